CREATE TABLE "docs" ("_id" TEXT, "k" TEXT, "n" BIGINT, "x" DOUBLE, "flag" BOOLEAN, "when" TIMESTAMPTZ, "tags" TEXT[], "user.country" TEXT, "user.age" BIGINT);
