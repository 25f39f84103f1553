"""Data-parallel training: two CPU processes (gloo) train on different shards and stay identical replicas
(an RNN DVAE and the Transformer LigHT-DVAE, whose sequence latent w is a parameter path of its own)."""

import socket

import pytest
import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CASES = {"srnn": dict(kind="trajectory", model="srnn", size=64, batch_size=8, epochs=3),
         "light-dvae": dict(kind="speech", model="light-dvae", size=16, batch_size=4, epochs=2)}


def _worker(rank, world, port, out_dir, case):
    import os

    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from ppl_models.dvae.train import train_prior

    dvae, _ = train_prior(out=f"{out_dir}/ckpt.pt", progress=False, **CASES[case])
    torch.save(dvae.state_dict(), f"{out_dir}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", sorted(CASES))
def test_two_processes_stay_identical_and_both_shards_count(tmp_path, case):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), case), nprocs=2, join=True)
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=0, rtol=0)
    # a single process on rank 0's shard alone ends elsewhere: the other shard's gradients were used
    import pyro
    from ppl_models.dvae.train import train_prior

    alone, _ = train_prior(out=tmp_path / "alone.pt", progress=False, **CASES[case])
    assert (tmp_path / "ckpt.pt").is_file()
    differs = any(not torch.equal(a[k], alone.state_dict()[k]) for k in a)
    assert differs
    pyro.clear_param_store()


def test_an_explicit_gpu_index_under_torchrun_is_a_clear_error(monkeypatch):
    """Every rank would put its replica on that one GPU while NCCL binds each rank to GPU LOCAL_RANK."""
    from ppl_models.infer.distributed import init_distributed

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="--device cuda:0"):
        init_distributed(torch.device("cuda:0"))
