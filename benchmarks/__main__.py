import sys

from cnnbase import cli

cli.quiet_framework_logs()  # before TensorFlow loads
from .suite import main  # noqa: E402

sys.exit(cli.run("python -m benchmarks", main))
