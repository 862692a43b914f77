"""Names vulture (tests/unit/test_dead_code.py) must not report: used, but not visibly to it.

Not imported by anything; vulture reads it next to bounceproc/ and workers/. The kinds of entry:
- called by a framework: FastAPI route functions and exception handlers, aiosmtpd `handle_*` /
  `smtp_*` hooks and attributes, Celery task bodies and signal handlers, SQLAlchemy TypeDecorator
  hooks, pydantic `model_config`/validators and response-model fields (part of the API schema);
- read by name: settings fields the sink reads with getattr (`_setting`), dataclass counters
  reported through `asdict`/`vars`, result fields a caller may read;
- public API of the domain kept for the sending core and the tests (encode_verp, encode_stamp,
  webhook_signing.verify, ...), and documented vocabularies (EVENT_TYPES, KINDS, W_* widths).
A new entry needs one of these reasons; dead code is deleted instead.
"""
# ruff: noqa
# flake8: noqa


# bounceproc/app/service.py
new_events  # unused variable
suppressed  # unused variable
soft_counted  # unused variable
keys_created  # unused variable
_.new_events  # unused attribute
_.soft_counted  # unused attribute
_.suppressed  # unused attribute
_.keys_created  # unused attribute

# bounceproc/bootstrap.py
dispose_engines  # unused function (tests, bench/)
dispose_engine  # unused function (tests)

# bounceproc/config.py
sink_hostname  # unused variable
sink_max_message_size  # unused variable
sink_max_recipients  # unused variable
sink_max_connections  # unused variable
sink_max_connections_per_ip  # unused variable
sink_max_commands  # unused variable
sink_timeout  # unused variable
sink_task  # unused variable

# bounceproc/domain/classify.py
category_for  # unused function

# bounceproc/domain/events.py
EVENT_TYPES  # unused variable

# bounceproc/domain/parse/acct.py
W_CODE  # unused variable
_.i_pool  # unused attribute

# bounceproc/domain/parse/message.py
KINDS  # unused variable

# bounceproc/domain/parse/mime.py
_.maintype  # unused property

# bounceproc/domain/parse/stamp.py
encode_stamp  # unused function

# bounceproc/domain/parse/verp.py
encode_verp  # unused function

# bounceproc/domain/webhook_retry.py
max_attempts  # unused function

# bounceproc/domain/webhook_signing.py
verify  # unused function

# bounceproc/entrypoints/acct_pipe.py
nbytes  # unused variable
_.error_count  # unused attribute
frame  # unused variable
signum  # unused variable

# bounceproc/entrypoints/cli/main.py
_get_formatter  # unused method (argparse calls it; overridden for start-up time)

# bounceproc/entrypoints/cli/serve.py
_.processed  # unused attribute

# bounceproc/entrypoints/http/app.py
healthz  # unused function
prometheus_metrics  # unused function
dashboard  # unused function

# bounceproc/entrypoints/http/imports.py
create_import  # unused function
get_import  # unused function

# bounceproc/entrypoints/http/models.py
model_config  # unused variable
_._no_nul  # unused method
updated_at  # unused variable
next_cursor  # unused variable
suppressed  # unused variable
unchanged  # unused variable
finished_at  # unused variable
suppression_changes  # unused variable
disabled_reason  # unused variable
last_status  # unused variable
last_error  # unused variable
delivered_at  # unused variable
attempt_log  # unused variable
replayed  # unused variable

# bounceproc/entrypoints/http/problems.py
_problem  # unused function
_invalid  # unused function
_http  # unused function
_crash  # unused function

# bounceproc/entrypoints/http/suppressions.py
export_csv  # unused function
list_suppressions  # unused function
put_suppression  # unused function
delete_suppression  # unused function
recipient_events  # unused function

# bounceproc/entrypoints/http/unsubscribe.py
unsubscribe_page  # unused function

# bounceproc/entrypoints/http/webhook_admin.py
create_endpoint  # unused function
list_endpoints  # unused function
get_endpoint  # unused function
patch_endpoint  # unused function
delete_endpoint  # unused function
rotate_secret  # unused function
list_deliveries  # unused function
get_delivery  # unused function
replay_delivery  # unused function
replay_range  # unused function

# bounceproc/entrypoints/smtp_sink.py
committed  # unused variable
enqueue_failures  # unused variable
_.committed  # unused attribute
_.enqueue_failures  # unused attribute
line_length_limit  # unused variable
_.smtp_DATA  # unused method
_.content  # unused attribute
accepted  # unused variable
refused_rcpt  # unused variable
refused_connections  # unused variable
temp_failures  # unused variable
_.refused_connections  # unused attribute
_.handle_PROXY  # unused method
_.handle_RCPT  # unused method
_.refused_rcpt  # unused attribute
_.handle_DATA  # unused method
_.temp_failures  # unused attribute
_.accepted  # unused attribute

# bounceproc/storage/intake_rows.py
_.row_factory  # unused attribute

# bounceproc/storage/tables.py
cache_ok  # unused variable
_.process_bind_param  # unused method
_.process_result_value  # unused method

# workers/celery_app.py
_quiet_library_logs  # unused function
_freeze_startup_objects  # unused function
_start_heartbeat  # Celery signal handler (workers/celery_app.py)
_stop_heartbeat  # Celery signal handler (workers/celery_app.py)

# workers/sink_tasks.py
ingest_messages  # unused function

# workers/tasks.py
sweep_intake  # unused function

# workers/webhook_tasks.py
deliver_webhooks  # unused function
retry_webhooks  # unused function

# workers/celery_config.py (Celery reads the module's names as its settings)
task_default_queue  # unused variable
task_acks_late  # unused variable
task_reject_on_worker_lost  # unused variable
worker_prefetch_multiplier  # unused variable
task_ignore_result  # unused variable
broker_connection_retry_on_startup  # unused variable
worker_hijack_root_logger  # unused variable
beat_schedule  # unused variable
beat_schedule_filename  # unused variable

# ESP webhook routes and the mailbox reader (issue 17)
parse_report  # unused function (tests/e2e/test_sink_flow.py) bounceproc/app/message_intake.py
ingest_ses  # unused function (FastAPI route) bounceproc/entrypoints/http/esp.py
ingest_sendgrid  # unused function (FastAPI route)
ingest_mailgun  # unused function (FastAPI route)
ingest_postmark  # unused function (FastAPI route)
ingest_postmark_secret_path  # unused function (FastAPI route)
_.rounds  # unused attribute (read by tests/integration/test_mailbox.py) bounceproc/entrypoints/mailbox.py

# Merged from the dashboard (routes, hooks for the sending core), the sending core part 1 (directives
# parsed for part 2, test clock, aiosmtpd hooks) and defects-b (legacy tokens made by tests)
ALERTS  # unused variable (bounceproc/app/alerts.py:27)
register_queues  # unused function (bounceproc/app/ops_hooks.py:31)
unregister  # unused function (bounceproc/app/ops_hooks.py:35)
scope_desc  # unused variable (bounceproc/domain/mta/build.py:322)
log_connections  # unused variable (bounceproc/domain/mta/config.py:103)
log_commands  # unused variable (bounceproc/domain/mta/config.py:104)
verp_default  # unused variable (bounceproc/domain/mta/config.py:105)
pattern_list  # unused variable (bounceproc/domain/mta/config.py:106)
write_timeout  # unused variable (bounceproc/domain/mta/config.py:177)
user_string  # unused variable (bounceproc/domain/mta/config.py:181)
postmasters  # unused variable (bounceproc/domain/mta/config.py:191)
http_mgmt_port  # unused variable (bounceproc/domain/mta/config.py:197)
http_access  # unused variable (bounceproc/domain/mta/config.py:198)
mode_since  # unused variable (bounceproc/domain/mta/queue_state.py:31)
make_legacy_token  # unused function (bounceproc/domain/unsubscribe_token.py:102)
dashboard_page  # unused function (bounceproc/entrypoints/http/dashboard.py:83)
dashboard_data  # unused function (bounceproc/entrypoints/http/dashboard.py:105)
dashboard_rule  # unused function (bounceproc/entrypoints/http/dashboard.py:114)
dashboard_static  # unused function (bounceproc/entrypoints/http/dashboard.py:123)
FakeClock  # unused class (bounceproc/mta/clock.py:24)
_.advance  # unused method (bounceproc/mta/clock.py:43)
_.nameservers  # unused attribute (bounceproc/mta/dns.py:35)
_.lifetime  # unused attribute (bounceproc/mta/dns.py:39)
_.waiting  # unused attribute (bounceproc/mta/engine.py:50)
_.set_mode  # unused method (bounceproc/mta/engine.py:71)
_.waiting  # unused attribute (bounceproc/mta/engine.py:315)
_.waiting  # unused attribute (bounceproc/mta/engine.py:336)
headers_added  # unused variable (bounceproc/mta/hooks.py:76)
_.handle_MAIL  # unused method (bounceproc/mta/listener.py:72)
_.ports  # unused property (bounceproc/mta/service.py:36)
_.call  # unused method (bounceproc/mta/service.py:93)
_.segments  # unused method (bounceproc/mta/spool.py:265)

# issue 13 (defects-a): read by name through _setting(); lru_cache attribute set on the memo wrapper
sink_max_messages  # unused variable (bounceproc/config.py)
_.maxsize  # unused attribute (bounceproc/domain/classify.py)

# the sending core, part 2 (issue 11): counters read by tests and the management view
_.enters_backoff  # unused property (bounceproc/domain/mta/backoff.py:46)
_.loop_parts  # unused attribute (bounceproc/entrypoints/cli/mta.py:47)
MAX_REQUEST  # unused variable (bounceproc/mta/management.py:31)
_.addresses_fetched  # unused attribute (bounceproc/mta/suppression_cache.py:42)
_.addresses_fetched  # unused attribute (bounceproc/mta/suppression_cache.py:80)
_.unchecked  # unused attribute (bounceproc/mta/suppression_cache.py:115)
_.unchecked  # unused attribute (bounceproc/mta/suppression_cache.py:153)

# operator experience (issue 14): FastAPI routes, argparse attributes, Celery signal handlers
_.formatter_class  # unused attribute (bounceproc/entrypoints/cli/help_text.py:117)
_.formatter_class  # unused attribute (bounceproc/entrypoints/cli/help_text.py:128)
readyz  # unused function (bounceproc/entrypoints/http/app.py:76)
docs  # unused function (bounceproc/entrypoints/http/app.py:116)
purged  # unused variable (bounceproc/entrypoints/http/quarantine.py:58)
list_quarantine  # unused function (bounceproc/entrypoints/http/quarantine.py:80)
show_quarantine  # unused function (bounceproc/entrypoints/http/quarantine.py:92)
replay_quarantine  # unused function (bounceproc/entrypoints/http/quarantine.py:102)
purge_quarantine  # unused function (bounceproc/entrypoints/http/quarantine.py:112)
_operator_logging  # unused function (workers/celery_app.py:55)
