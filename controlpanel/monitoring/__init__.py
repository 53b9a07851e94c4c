"""Scheduled health checks of targets, their time series and charts, troubleshooting and post-migration tasks."""
