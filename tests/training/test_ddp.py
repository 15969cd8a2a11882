"""DDP on CPU: two gloo processes train the tiny CVAE on shards of each global batch and end with
identical weights and loss histories; rank 0 alone writes the checkpoint."""

import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from medsyn.training.checkpoint import load_checkpoint


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _train_on_rank(rank: int, world_size: int, port: int, out_dir: str) -> None:
    from sklearn.datasets import load_digits

    from medsyn.data.image_set import ImageSet
    from medsyn.models.registry import build_generator
    from medsyn.training.distributed import rank_and_world_size

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        assert rank_and_world_size() == (rank, world_size)
        digits = load_digits()
        images = F.interpolate(torch.tensor(digits.images[:80], dtype=torch.float32)[:, None] / 16, size=16)
        train = ImageSet(images.clamp(0, 1), torch.tensor(digits.target[:80]), tuple("0123456789"), "digits")
        generator = build_generator(
            "cvae",
            num_classes=10,
            image_shape=(1, 16, 16),
            hidden_dims=[4, 8],
            latent_dim=4,
            steps=6,
            batch_size=16,
        )
        generator.fit(train, f"{out_dir}/checkpoint.pt", seed=rank * 0 + 7, progress=False)
        torch.save(
            {"weights": generator.network.state_dict(), "history": generator.history},
            f"{out_dir}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_end_with_the_same_weights(tmp_path):
    # fork: the children inherit the already-imported torch/medsyn instead of re-importing them (seconds each)
    mp.start_processes(
        _train_on_rank, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True, start_method="fork"
    )
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert rank0["history"] == rank1["history"] and len(rank0["history"]) == 6
    for name, weight in rank0["weights"].items():
        torch.testing.assert_close(weight, rank1["weights"][name], rtol=0, atol=0, msg=name)
    payload = load_checkpoint(tmp_path / "checkpoint.pt", model="cvae")
    assert payload["step"] == 6 and payload["world_size"] == 2
    for name, weight in payload["state"]["network"].items():
        torch.testing.assert_close(weight, rank0["weights"][name], rtol=0, atol=0, msg=name)
    # the weights moved: training happened on both ranks' shards
    assert any(not torch.equal(w, torch.zeros_like(w)) for w in rank0["weights"].values())
