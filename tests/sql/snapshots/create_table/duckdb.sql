CREATE TABLE "docs" ("_id" TEXT PRIMARY KEY, "k" TEXT, "n" BIGINT, "x" DOUBLE, "flag" BOOLEAN, "when" TIMESTAMPTZ, "tags" TEXT[], "user.country" TEXT, "user.age" BIGINT);
