"""Dashboards: page definitions (definitions/*.yaml) rendered by pure Plotly figure builders into offline HTML."""
