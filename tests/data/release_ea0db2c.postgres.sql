--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: jobs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.jobs (
    id character varying(32) NOT NULL,
    name character varying(256) NOT NULL,
    description text,
    state character varying(16) NOT NULL,
    parent_id character varying(32),
    created_at timestamp with time zone NOT NULL,
    started_at timestamp with time zone,
    completed_at timestamp with time zone,
    failed_at timestamp with time zone,
    delete_at timestamp with time zone,
    "position" integer NOT NULL,
    task_count integer NOT NULL,
    progress double precision NOT NULL,
    result text,
    error text,
    doc json NOT NULL,
    ts tsvector GENERATED ALWAYS AS (((setweight(to_tsvector('english'::regconfig, (COALESCE(state, ''::character varying))::text), 'A'::"char") || setweight(to_tsvector('english'::regconfig, (COALESCE(name, ''::character varying))::text), 'B'::"char")) || setweight(to_tsvector('english'::regconfig, COALESCE(description, ''::text)), 'C'::"char"))) STORED
);


--
-- Name: jobs_tags; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.jobs_tags (
    job_id character varying(32) NOT NULL,
    tag character varying(256) NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: requests; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.requests (
    id character varying(320) NOT NULL,
    kind character varying(16) NOT NULL,
    job_id character varying(32) NOT NULL,
    fingerprint character varying(64) NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: tasks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.tasks (
    id character varying(32) NOT NULL,
    job_id character varying(32) NOT NULL,
    parent_id character varying(32),
    "position" integer NOT NULL,
    name text NOT NULL,
    state character varying(16) NOT NULL,
    queue text NOT NULL,
    priority integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    scheduled_at timestamp with time zone,
    started_at timestamp with time zone,
    completed_at timestamp with time zone,
    failed_at timestamp with time zone,
    error text,
    result text,
    node_id character varying(64),
    progress double precision NOT NULL,
    redelivered integer DEFAULT 0 NOT NULL,
    spec json NOT NULL
);


--
-- Name: tasks_log_parts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.tasks_log_parts (
    id character varying(32) NOT NULL,
    task_id character varying(32) NOT NULL,
    number integer NOT NULL,
    contents text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    ts tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, contents)) STORED
);


--
-- Name: users; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.users (
    id character varying(32) NOT NULL,
    name character varying(256) NOT NULL,
    username character varying(256) NOT NULL,
    password_hash text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    disabled boolean NOT NULL
);


--
-- Data for Name: jobs; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.jobs VALUES ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'nightly backup', 'copies the files', 'COMPLETED', NULL, '2026-11-29 12:00:00+00', NULL, '2026-11-29 12:00:00+00', NULL, NULL, 2, 2, 0, 'all copied', NULL, '{"tags": ["ops", "nightly"], "created_by": {"id": "guest", "name": "Guest", "username": "guest", "created_at": null, "disabled": true}, "inputs": {}, "secrets": {}, "context": {}, "tasks": [{"name": "copy", "image": "alpine", "run": "cp -r /a /b"}], "output": null, "defaults": null, "webhooks": null, "permissions": null, "auto_delete": null, "schedule": null}', DEFAULT);
INSERT INTO public.jobs VALUES ('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'weekly report', NULL, 'PENDING', NULL, '2026-11-29 12:00:00+00', NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL, '{"tags": ["reports"], "created_by": {"id": "guest", "name": "Guest", "username": "guest", "created_at": null, "disabled": true}, "inputs": {}, "secrets": {}, "context": {}, "tasks": [], "output": null, "defaults": null, "webhooks": null, "permissions": null, "auto_delete": null, "schedule": null}', DEFAULT);


--
-- Data for Name: jobs_tags; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.jobs_tags VALUES ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'nightly', '2026-11-29 12:00:00+00');
INSERT INTO public.jobs_tags VALUES ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'ops', '2026-11-29 12:00:00+00');
INSERT INTO public.jobs_tags VALUES ('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'reports', '2026-11-29 12:00:00+00');


--
-- Data for Name: requests; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: tasks; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.tasks VALUES ('11111111111111111111111111111111', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', NULL, 1, 'step 1', 'COMPLETED', 'default', 0, '2026-11-29 12:00:00+00', NULL, NULL, '2026-11-29 12:00:00+00', NULL, NULL, 'out 1', NULL, 0, 0, '{"image": "alpine", "run": "true"}');
INSERT INTO public.tasks VALUES ('22222222222222222222222222222222', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', NULL, 2, 'step 2', 'COMPLETED', 'default', 0, '2026-11-29 12:00:00+00', NULL, NULL, '2026-11-29 12:00:00+00', NULL, NULL, 'out 2', NULL, 0, 0, '{"image": "alpine", "run": "true"}');


--
-- Data for Name: tasks_log_parts; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.tasks_log_parts VALUES ('b8de9e47d3864d508fdfd2f272b7805d', '11111111111111111111111111111111', 1, 'copied 42 files
', '2026-11-30 09:04:27.847562+00', DEFAULT);


--
-- Data for Name: users; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.users VALUES ('guest', 'Guest', 'guest', '', '2026-11-30 09:04:27.759228+00', true);


--
-- Name: jobs jobs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);


--
-- Name: jobs_tags jobs_tags_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs_tags
    ADD CONSTRAINT jobs_tags_pkey PRIMARY KEY (job_id, tag);


--
-- Name: requests requests_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.requests
    ADD CONSTRAINT requests_pkey PRIMARY KEY (id);


--
-- Name: tasks_log_parts tasks_log_parts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tasks_log_parts
    ADD CONSTRAINT tasks_log_parts_pkey PRIMARY KEY (id);


--
-- Name: tasks tasks_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tasks
    ADD CONSTRAINT tasks_pkey PRIMARY KEY (id);


--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);


--
-- Name: users users_username_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_username_key UNIQUE (username);


--
-- Name: ix_jobs_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_jobs_created_at ON public.jobs USING btree (created_at);


--
-- Name: ix_jobs_delete_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_jobs_delete_at ON public.jobs USING btree (delete_at);


--
-- Name: ix_jobs_parent_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_jobs_parent_id ON public.jobs USING btree (parent_id);


--
-- Name: ix_jobs_state; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_jobs_state ON public.jobs USING btree (state);


--
-- Name: ix_jobs_tags_tag_created; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_jobs_tags_tag_created ON public.jobs_tags USING btree (tag, created_at, job_id);


--
-- Name: ix_jobs_ts; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_jobs_ts ON public.jobs USING gin (ts);


--
-- Name: ix_log_parts_task_number; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_log_parts_task_number ON public.tasks_log_parts USING btree (task_id, number);


--
-- Name: ix_log_parts_ts; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_log_parts_ts ON public.tasks_log_parts USING gin (ts);


--
-- Name: ix_requests_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_requests_created_at ON public.requests USING btree (created_at);


--
-- Name: ix_tasks_job_position; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_tasks_job_position ON public.tasks USING btree (job_id, "position");


--
-- Name: ix_tasks_log_parts_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_tasks_log_parts_created_at ON public.tasks_log_parts USING btree (created_at);


--
-- Name: ix_tasks_parent_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_tasks_parent_id ON public.tasks USING btree (parent_id);


--
-- Name: ix_tasks_state; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_tasks_state ON public.tasks USING btree (state);


--
-- Name: jobs_tags jobs_tags_job_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs_tags
    ADD CONSTRAINT jobs_tags_job_id_fkey FOREIGN KEY (job_id) REFERENCES public.jobs(id) ON DELETE CASCADE;


--
-- PostgreSQL database dump complete
--


