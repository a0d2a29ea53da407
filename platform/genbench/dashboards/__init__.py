"""Dashboards: definitions (dashboards/*.yaml) rendered by pure Plotly figure builders into an offline HTML site."""
