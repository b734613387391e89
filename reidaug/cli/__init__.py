"""The ``reidaug`` command line: a thin layer over the library, one module per command."""

from reidaug.cli import bench_reid, data, demo, evaluate, poses, synthesize, train
from reidaug.cli.app import cli

cli.add_command(data.data)
cli.add_command(train.train_cmd)
cli.add_command(evaluate.evaluate_cmd)
cli.add_command(synthesize.synthesize_cmd)
cli.add_command(synthesize.export_cmd)
cli.add_command(bench_reid.bench_reid_cmd)
cli.add_command(poses.poses)
cli.add_command(demo.demo_cmd)

__all__ = ["cli"]
