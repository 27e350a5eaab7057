"""churnguard — customer churn management (客户流失管理系统).

The Python API is the same set of functions the CLI calls::

    import churnguard as cg
    store = cg.connect("duckdb:///churn.duckdb")
    cg.ingest_table(store, "customers", "customers.csv", mapping="customers.yaml")
"""

from churnguard.ingest import IngestResult, LoadSpec, ingest_table, ingest_tables
from churnguard.store import Store, connect

__version__ = "0.1.0"

__all__ = ["IngestResult", "LoadSpec", "Store", "__version__", "connect", "ingest_table", "ingest_tables"]
