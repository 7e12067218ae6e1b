CREATE TABLE `raw_archives` (
	`usage_date` text PRIMARY KEY NOT NULL,
	`file_name` text,
	`row_count` integer NOT NULL,
	`bytes` integer,
	`sha256` text,
	`archived_at` text,
	`purged_at` text,
	`restored_at` text
);
