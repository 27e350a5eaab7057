"""The web dashboard: server-rendered Jinja pages, a small script and CSS, Plotly from the plotly package."""
