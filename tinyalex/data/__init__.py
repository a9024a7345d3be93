"""Data: CIFAR-10, image folders, the embedded synthetic set, the papers' transforms, and the loader.

    from tinyalex import data
    train = data.load("synthetic")                  # or data.CIFAR10(download=True), data.ImageFolder(root)
    t = data.transforms
    loader = data.DataLoader(train, 128, shuffle=True, device="cuda",
                             transform=t.Compose([t.RandomCrop(32, padding=4), t.RandomFlip(), t.ToFloat()]))
"""
from . import pipeline, transforms
from .cifar10 import CIFAR10
from .download import cache_dir
from .folder import ImageFolder
from .loader import DataLoader
from .sources import load
from .synthetic import SyntheticShapes
