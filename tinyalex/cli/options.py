"""The argparse pieces that several commands share."""
import argparse


class Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where there is none (the help text then says what happens)."""

    def _get_help_string(self, action):
        return action.help if action.default in (None, False) else super()._get_help_string(action)


def parent(*adders):
    """A parent parser holding options several commands share."""
    p = argparse.ArgumentParser(add_help=False)
    for add in adders:
        add(p)
    return p


def add_device(p):
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")


def add_loading(p):
    p.add_argument("--workers", type=int, default=2, help="background threads preparing batches")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_checkpoint(p):
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="a .npz written by tinyalex train")
