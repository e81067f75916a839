"""Data exchange with the back office: NAXML movement reports out (`export.py`), the pricebook in (`parse.py`
reads NAXML item maintenance and the REST pricebook, `pricebook.py` applies them). See docs/back-office.md."""
