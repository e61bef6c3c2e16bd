"""The live comparison page of the admin listener: `GET /` and `GET /api/summary`.

series.py    what the page reads of the metric registry, summed down to model and arm
history.py   a bounded ring of those readings, taken on a timer off the call path
summary.py   the /api/summary document: the report's comparison over a window, charts
gates.py     each stop-loss limit against the value it is judged on now
page.py      the page itself (page.html, page.css, page.js, served from memory)
service.py   the parts together, as the admin listener calls them
"""
