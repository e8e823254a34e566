"""One process of a torchrun job of the StyleGAN2 DDP test (test_stylegan.py): a collective training and a sharded
sampling of a tiny StyleGAN2, written by rank 0 to the file named by the first argument."""

import sys

import numpy as np
import torch
import torch.distributed as dist

from madutils.models.stylegan import StyleGANFamily

TINY = dict(channel_base=128, channel_max=16, z_dim=16, w_dim=16, mapping_layers=2, progress=False, device="cpu")


def toy_images(n=64, size=8, seed=0):
    """Bright squares at random places on a dark background, uint8 (n, 1, size, size)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, size, size), np.uint8)
    for i, (r, c) in enumerate(rng.integers(0, size - 3, size=(n, 2))):
        x[i, 0, r : r + 3, c : c + 3] = 255
    return x


def family(group: tuple[int, int] | None, batch_size: int, steps: int) -> StyleGANFamily:
    fam = StyleGANFamily(steps=steps, batch_size=batch_size, r1_interval=2, **TINY)
    return fam.in_group(group) if group is not None else fam  # as the loop engine does with the group it is given


def run(group: tuple[int, int] | None, batch_size: int, steps: int):
    fam = family(group, batch_size, steps)
    model = fam.fit(toy_images(size=16), seed=3)
    return model, fam.sample(model, 600, 0.7, seed=5)  # three chunks of 256: unequal shares


if __name__ == "__main__":
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    batch_size, steps = int(sys.argv[2]), int(sys.argv[3])
    model, images = run((dist.get_rank(), dist.get_world_size()), batch_size, steps)
    alone = family(None, batch_size, steps).sample(model, 600, 0.7, seed=5)  # the same model, one process
    if dist.get_rank() == 0:
        torch.save({"state": model.state, "losses": model.losses, "images": images, "alone": alone}, sys.argv[1])
    dist.destroy_process_group()
