CREATE TABLE `usage_event_voids` (
	`request_id` text PRIMARY KEY NOT NULL,
	`client_org_id` text NOT NULL,
	`model` text NOT NULL,
	`external_user` text NOT NULL,
	`input_tokens` integer NOT NULL,
	`output_tokens` integer NOT NULL,
	`total_tokens` integer NOT NULL,
	`cost_nano_usd` integer NOT NULL,
	`occurred_at` integer NOT NULL,
	`received_at` integer NOT NULL,
	`reason` text NOT NULL,
	`voided_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `usage_event_voids_occurred_at_idx` ON `usage_event_voids` (`occurred_at`);