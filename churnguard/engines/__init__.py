"""Other engines for the set-based stages: the Parquet lake export and the Spark engine.

``churnguard.engines.lake`` writes a store's tables to a Parquet lake; ``spark_sql`` translates
churnguard's DuckDB SQL to Spark SQL; ``spark_stages`` runs each stage on Spark.  Nothing here
imports pyspark until a Spark session is asked for.
"""
