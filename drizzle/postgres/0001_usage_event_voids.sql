CREATE TABLE "usage_event_voids" (
	"request_id" text COLLATE "C" PRIMARY KEY NOT NULL,
	"client_org_id" text COLLATE "C" NOT NULL,
	"model" text COLLATE "C" NOT NULL,
	"external_user" text COLLATE "C" NOT NULL,
	"input_tokens" bigint NOT NULL,
	"output_tokens" bigint NOT NULL,
	"total_tokens" bigint NOT NULL,
	"cost_nano_usd" bigint NOT NULL,
	"occurred_at" bigint NOT NULL,
	"received_at" bigint NOT NULL,
	"reason" text COLLATE "C" NOT NULL,
	"voided_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE INDEX "usage_event_voids_occurred_at_idx" ON "usage_event_voids" USING btree ("occurred_at");