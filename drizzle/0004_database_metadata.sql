CREATE TABLE `database_metadata` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL
);
