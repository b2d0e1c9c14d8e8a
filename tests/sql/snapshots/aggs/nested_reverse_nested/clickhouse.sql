-- statement 0
SELECT COUNT(*) AS "doc_count" FROM (SELECT *, "__n0"."author" AS "comments:author", "__n0"."stars" AS "comments:stars" FROM (SELECT *, arrayJoin("comments") AS "__n0" FROM "docs") AS __r1) AS __r2;
-- statement 1
SELECT "comments:author" AS "k1", COUNT(*) AS "doc_count", SUM(COUNT(*)) OVER () AS "total" FROM (SELECT *, "__n0"."author" AS "comments:author", "__n0"."stars" AS "comments:stars" FROM (SELECT *, arrayJoin("comments") AS "__n0" FROM "docs") AS __r1) AS __r2 WHERE NOT ("comments:author" IS NULL) GROUP BY "comments:author" ORDER BY COUNT(*) DESC, "comments:author" ASC LIMIT 10;
-- statement 2
SELECT "k1", COUNT(*) AS "doc_count" FROM (SELECT * FROM (SELECT DISTINCT "k1", "_id" FROM (SELECT *, "comments:author" AS "k1" FROM (SELECT *, "__n0"."author" AS "comments:author", "__n0"."stars" AS "comments:stars" FROM (SELECT *, arrayJoin("comments") AS "__n0" FROM "docs") AS __r1) AS __r2 WHERE NOT ("comments:author" IS NULL) AND "comments:author" IN ({s1_k1:String})) AS __r3) AS __d4 JOIN "docs" USING (_id)) AS __r5 GROUP BY "k1" ORDER BY "k1" LIMIT 65536;
-- params: {}
