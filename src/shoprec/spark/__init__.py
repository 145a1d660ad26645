"""The Spark engine: the pipeline's load, split, train, score and evaluate steps on Apache Spark."""
