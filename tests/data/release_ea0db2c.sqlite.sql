CREATE TABLE jobs (
	id VARCHAR(32) NOT NULL, 
	name VARCHAR(256) NOT NULL, 
	description TEXT, 
	state VARCHAR(16) NOT NULL, 
	parent_id VARCHAR(32), 
	created_at DATETIME NOT NULL, 
	started_at DATETIME, 
	completed_at DATETIME, 
	failed_at DATETIME, 
	delete_at DATETIME, 
	position INTEGER NOT NULL, 
	task_count INTEGER NOT NULL, 
	progress FLOAT NOT NULL, 
	result TEXT, 
	error TEXT, 
	doc JSON NOT NULL, 
	PRIMARY KEY (id)
);
CREATE VIRTUAL TABLE jobs_fts USING fts5(state, name, description, content='jobs', tokenize='porter unicode61');
CREATE TABLE jobs_tags (
	job_id VARCHAR(32) NOT NULL, 
	tag VARCHAR(256) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (job_id, tag), 
	FOREIGN KEY(job_id) REFERENCES jobs (id) ON DELETE CASCADE
);
CREATE VIRTUAL TABLE log_fts USING fts5(task_id, contents, content='tasks_log_parts', tokenize='porter unicode61');
CREATE TABLE requests (
	id VARCHAR(320) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	job_id VARCHAR(32) NOT NULL, 
	fingerprint VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE tasks (
	id VARCHAR(32) NOT NULL, 
	job_id VARCHAR(32) NOT NULL, 
	parent_id VARCHAR(32), 
	position INTEGER NOT NULL, 
	name TEXT NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	queue TEXT NOT NULL, 
	priority INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	scheduled_at DATETIME, 
	started_at DATETIME, 
	completed_at DATETIME, 
	failed_at DATETIME, 
	error TEXT, 
	result TEXT, 
	node_id VARCHAR(64), 
	progress FLOAT NOT NULL, 
	redelivered INTEGER DEFAULT '0' NOT NULL, 
	spec JSON NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE tasks_log_parts (
	id VARCHAR(32) NOT NULL, 
	task_id VARCHAR(32) NOT NULL, 
	number INTEGER NOT NULL, 
	contents TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE users (
	id VARCHAR(32) NOT NULL, 
	name VARCHAR(256) NOT NULL, 
	username VARCHAR(256) NOT NULL, 
	password_hash TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	disabled BOOLEAN NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (username)
);
CREATE INDEX ix_jobs_created_at ON jobs (created_at);
CREATE INDEX ix_jobs_delete_at ON jobs (delete_at);
CREATE INDEX ix_jobs_parent_id ON jobs (parent_id);
CREATE INDEX ix_jobs_state ON jobs (state);
CREATE INDEX ix_jobs_tags_tag_created ON jobs_tags (tag, created_at, job_id);
CREATE INDEX ix_log_parts_task_number ON tasks_log_parts (task_id, number);
CREATE INDEX ix_requests_created_at ON requests (created_at);
CREATE INDEX ix_tasks_job_position ON tasks (job_id, position);
CREATE INDEX ix_tasks_log_parts_created_at ON tasks_log_parts (created_at);
CREATE INDEX ix_tasks_parent_id ON tasks (parent_id);
CREATE INDEX ix_tasks_state ON tasks (state);
CREATE TRIGGER jobs_fts_ad AFTER DELETE ON jobs BEGIN INSERT INTO jobs_fts(jobs_fts, rowid, state, name, description) VALUES ('delete', old.rowid, old.state, old.name, old.description); END;
CREATE TRIGGER jobs_fts_ai AFTER INSERT ON jobs BEGIN INSERT INTO jobs_fts(rowid, state, name, description) VALUES (new.rowid, new.state, new.name, new.description); END;
CREATE TRIGGER jobs_fts_au AFTER UPDATE OF state, name, description ON jobs WHEN old.state IS NOT new.state OR old.name IS NOT new.name OR old.description IS NOT new.description BEGIN INSERT INTO jobs_fts(jobs_fts, rowid, state, name, description) VALUES ('delete', old.rowid, old.state, old.name, old.description); INSERT INTO jobs_fts(rowid, state, name, description) VALUES (new.rowid, new.state, new.name, new.description); END;
CREATE TRIGGER log_fts_ad AFTER DELETE ON tasks_log_parts BEGIN INSERT INTO log_fts(log_fts, rowid, task_id, contents) VALUES ('delete', old.rowid, old.task_id, old.contents); END;
CREATE TRIGGER log_fts_ai AFTER INSERT ON tasks_log_parts BEGIN INSERT INTO log_fts(rowid, task_id, contents) VALUES (new.rowid, new.task_id, new.contents); END;
INSERT INTO "jobs" VALUES('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa','nightly backup','copies the files','COMPLETED',NULL,'2026-11-29 12:00:00.000000',NULL,'2026-11-29 12:00:00.000000',NULL,NULL,2,2,0.0,'all copied',NULL,'{"tags": ["ops", "nightly"], "created_by": {"id": "guest", "name": "Guest", "username": "guest", "created_at": null, "disabled": true}, "inputs": {}, "secrets": {}, "context": {}, "tasks": [{"name": "copy", "image": "alpine", "run": "cp -r /a /b"}], "output": null, "defaults": null, "webhooks": null, "permissions": null, "auto_delete": null, "schedule": null}');
INSERT INTO "jobs" VALUES('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb','weekly report',NULL,'PENDING',NULL,'2026-11-29 12:00:00.000000',NULL,NULL,NULL,NULL,0,0,0.0,NULL,NULL,'{"tags": ["reports"], "created_by": {"id": "guest", "name": "Guest", "username": "guest", "created_at": null, "disabled": true}, "inputs": {}, "secrets": {}, "context": {}, "tasks": [], "output": null, "defaults": null, "webhooks": null, "permissions": null, "auto_delete": null, "schedule": null}');
INSERT INTO "jobs_tags" VALUES('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa','nightly','2026-11-29 12:00:00.000000');
INSERT INTO "jobs_tags" VALUES('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa','ops','2026-11-29 12:00:00.000000');
INSERT INTO "jobs_tags" VALUES('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb','reports','2026-11-29 12:00:00.000000');
INSERT INTO "tasks" VALUES('11111111111111111111111111111111','aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',NULL,1,'step 1','COMPLETED','default',0,'2026-11-29 12:00:00.000000',NULL,NULL,'2026-11-29 12:00:00.000000',NULL,NULL,'out 1',NULL,0.0,0,'{"image": "alpine", "run": "true"}');
INSERT INTO "tasks" VALUES('22222222222222222222222222222222','aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',NULL,2,'step 2','COMPLETED','default',0,'2026-11-29 12:00:00.000000',NULL,NULL,'2026-11-29 12:00:00.000000',NULL,NULL,'out 2',NULL,0.0,0,'{"image": "alpine", "run": "true"}');
INSERT INTO "tasks_log_parts" VALUES('816fcf0296ba40389ded4bc66a5a9638','11111111111111111111111111111111',1,'copied 42 files
','2026-11-30 09:04:27.131159');
INSERT INTO "users" VALUES('guest','Guest','guest','','2026-11-30 09:04:26.925605',1);
