"""Use-cases shared by the DAGs and the web app. Functions take a Session and never commit."""
