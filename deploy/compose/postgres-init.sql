-- Runs once, when the postgres container initialises an empty data volume
-- (docker-entrypoint-initdb.d). One database per service: each service owns its data, and no
-- service can read another's tables through its DATABASE_URL's database.
CREATE DATABASE token;
CREATE DATABASE session_identity;
CREATE DATABASE iam_policy;
CREATE DATABASE mfa;
