"""Dashboards: pure Plotly figure builders (table in, figure out) and the offline HTML site writer."""
