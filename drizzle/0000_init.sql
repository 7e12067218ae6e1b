CREATE TABLE `client_daily_usage` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`client_org_id` text NOT NULL,
	`usage_date` text NOT NULL,
	`total_tokens` integer NOT NULL,
	`input_tokens` integer NOT NULL,
	`output_tokens` integer NOT NULL,
	`total_requests` integer NOT NULL,
	`raw_cost_nano_usd` integer NOT NULL,
	`markup_cost_nano_usd` integer NOT NULL,
	`markup_cost_nano_pln` integer,
	`markup_rate` text NOT NULL,
	`exchange_rate_usd_pln` text,
	`exchange_rate_date` text,
	`data_source` text NOT NULL,
	`batch_run_id` integer NOT NULL,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	`primary_model` text NOT NULL,
	`unique_users` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `client_daily_usage_client_date_uq` ON `client_daily_usage` (`client_org_id`,`usage_date`);--> statement-breakpoint
CREATE INDEX `client_daily_usage_date_idx` ON `client_daily_usage` (`usage_date`);--> statement-breakpoint
CREATE TABLE `client_model_daily_usage` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`client_org_id` text NOT NULL,
	`usage_date` text NOT NULL,
	`model` text NOT NULL,
	`total_tokens` integer NOT NULL,
	`input_tokens` integer NOT NULL,
	`output_tokens` integer NOT NULL,
	`total_requests` integer NOT NULL,
	`raw_cost_nano_usd` integer NOT NULL,
	`markup_cost_nano_usd` integer NOT NULL,
	`markup_cost_nano_pln` integer,
	`markup_rate` text NOT NULL,
	`exchange_rate_usd_pln` text,
	`exchange_rate_date` text,
	`data_source` text NOT NULL,
	`batch_run_id` integer NOT NULL,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `client_model_daily_usage_key_uq` ON `client_model_daily_usage` (`client_org_id`,`usage_date`,`model`);--> statement-breakpoint
CREATE INDEX `client_model_daily_usage_date_idx` ON `client_model_daily_usage` (`usage_date`);--> statement-breakpoint
CREATE TABLE `client_pricing` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`client_org_id` text NOT NULL,
	`effective_from` text NOT NULL,
	`markup_rate` text NOT NULL,
	`created_at` text NOT NULL,
	`note` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `client_pricing_client_from_uq` ON `client_pricing` (`client_org_id`,`effective_from`);--> statement-breakpoint
CREATE TABLE `client_user_daily_usage` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`client_org_id` text NOT NULL,
	`usage_date` text NOT NULL,
	`external_user` text NOT NULL,
	`model` text NOT NULL,
	`total_tokens` integer NOT NULL,
	`input_tokens` integer NOT NULL,
	`output_tokens` integer NOT NULL,
	`total_requests` integer NOT NULL,
	`raw_cost_nano_usd` integer NOT NULL,
	`markup_cost_nano_usd` integer NOT NULL,
	`markup_cost_nano_pln` integer,
	`markup_rate` text NOT NULL,
	`exchange_rate_usd_pln` text,
	`exchange_rate_date` text,
	`data_source` text NOT NULL,
	`batch_run_id` integer NOT NULL,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `client_user_daily_usage_key_uq` ON `client_user_daily_usage` (`client_org_id`,`usage_date`,`external_user`,`model`);--> statement-breakpoint
CREATE INDEX `client_user_daily_usage_date_idx` ON `client_user_daily_usage` (`usage_date`);--> statement-breakpoint
CREATE TABLE `daily_exchange_rates` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`usage_date` text NOT NULL,
	`currency_from` text NOT NULL,
	`currency_to` text NOT NULL,
	`rate` text NOT NULL,
	`effective_date` text NOT NULL,
	`table_no` text,
	`source` text NOT NULL,
	`policy` text NOT NULL,
	`fetched_at` text NOT NULL,
	`note` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `daily_exchange_rates_key_uq` ON `daily_exchange_rates` (`usage_date`,`currency_from`,`currency_to`);--> statement-breakpoint
CREATE TABLE `influxdb_batch_runs` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`processing_date` text NOT NULL,
	`trigger` text NOT NULL,
	`status` text NOT NULL,
	`started_at` text NOT NULL,
	`finished_at` text,
	`duration_ms` integer,
	`data_source` text NOT NULL,
	`clients_processed` integer DEFAULT 0 NOT NULL,
	`records_processed` integer DEFAULT 0 NOT NULL,
	`summaries_written` integer DEFAULT 0 NOT NULL,
	`data_corrections` integer DEFAULT 0 NOT NULL,
	`exchange_rate_usd_pln` text,
	`warnings` text DEFAULT '[]' NOT NULL,
	`error_message` text,
	`client_errors` text DEFAULT '[]' NOT NULL,
	`owner` text,
	`heartbeat_at` text
);
--> statement-breakpoint
CREATE INDEX `influxdb_batch_runs_date_idx` ON `influxdb_batch_runs` (`processing_date`);--> statement-breakpoint
CREATE INDEX `influxdb_batch_runs_started_idx` ON `influxdb_batch_runs` (`started_at`);--> statement-breakpoint
CREATE UNIQUE INDEX `influxdb_batch_runs_one_running_uq` ON `influxdb_batch_runs` (`processing_date`) WHERE status = 'running';--> statement-breakpoint
CREATE TABLE `usage_events` (
	`request_id` text PRIMARY KEY NOT NULL,
	`client_org_id` text NOT NULL,
	`model` text NOT NULL,
	`external_user` text NOT NULL,
	`input_tokens` integer NOT NULL,
	`output_tokens` integer NOT NULL,
	`total_tokens` integer NOT NULL,
	`cost_nano_usd` integer NOT NULL,
	`occurred_at` integer NOT NULL,
	`received_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `usage_events_occurred_at_idx` ON `usage_events` (`occurred_at`);--> statement-breakpoint
CREATE INDEX `usage_events_client_occurred_at_idx` ON `usage_events` (`client_org_id`,`occurred_at`);