"""Built-in datasets that need no download: ``demo.make_demo_dataset`` writes synthetic shapes."""

from .demo import CLASSES, DemoDataset, make_demo_dataset

__all__ = ["CLASSES", "DemoDataset", "make_demo_dataset"]
