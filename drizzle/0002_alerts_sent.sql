CREATE TABLE `alerts_sent` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`alert_key` text NOT NULL,
	`kind` text NOT NULL,
	`usage_date` text NOT NULL,
	`client_org_id` text,
	`sent_at` text NOT NULL,
	`attempts` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `alerts_sent_key_uq` ON `alerts_sent` (`alert_key`);