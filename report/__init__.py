"""shaobing-report: the weekly inspection report (巡检报告) for county and township leadership.

Queries Prometheus (and the relay's delivery history) for a period and a scope, and writes a Chinese report
as HTML (charts embedded as SVG, no external assets) and PDF (A4, Noto CJK embedded). See docs/report.md.
"""
