"""Background workers of the web processes: threads that carry durable work out of requests.

Each is a :class:`~include.workers.pump.Pump` over state that is already committed in
PostgreSQL, so a process may die at any point and another picks the work up: the label outbox
to Label Studio (``label_dispatcher``), Label Studio's webhooks to Airflow (``asset_signaller``),
and the jobs page's rows kept in step with Airflow (``job_reconciler``).
"""
