"""The report's file name, declared once: the generator writes it and the Dagster asset and checks look for it
(a module of its own so that importing it costs nothing; the generator imports matplotlib)."""


def report_file_name(cycle: int) -> str:
    """``bericht_<cycle>.html`` (the PDF is printed beside it under the same name, social_monitor/report/pdf.py)."""
    return f"bericht_{cycle}.html"
