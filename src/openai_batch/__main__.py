from openai_batch.cli import run

run()
