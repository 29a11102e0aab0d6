"""Stage stamps: a stage reruns exactly when its inputs' content or config changes."""

import os

from graphrec.stages import file_signature, run_stage


def test_file_signature_follows_content_not_timestamps(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "copy" / "a.csv"
    a.write_text("user_id,item_id\n1,2\n")
    b.parent.mkdir()
    b.write_bytes(a.read_bytes())
    os.utime(b, ns=(5, 5))
    assert file_signature(a) == file_signature(b)  # copied / re-mounted: same bytes, same signature
    b.write_text("user_id,item_id\n1,3\n")
    assert file_signature(a) != file_signature(b)


def test_run_stage_skips_when_inputs_match(tmp_path):
    calls = []

    def work():
        calls.append(1)
        return {"n": len(calls)}

    logs = []
    run_stage("demo", tmp_path / "out", {"x": 1}, work, log=logs.append)
    run_stage("demo", tmp_path / "out", {"x": 1}, work, log=logs.append)
    assert len(calls) == 1
    run_stage("demo", tmp_path / "out", {"x": 2}, work, log=logs.append)
    run_stage("demo", tmp_path / "out", {"x": 2}, work, force=True, log=logs.append)
    assert len(calls) == 3


def test_run_paths_name_every_file_of_a_run(tmp_path):
    from graphrec.paths import STAGE_STAMP, ModelPaths, RunPaths
    from graphrec.stages.base import STAMP

    p = RunPaths(tmp_path)
    assert p.model_dir(0, 0) == tmp_path / "model" and p.model_dir(3, 0) == tmp_path / "model_seed3"
    assert ModelPaths(p.oracle).checkpoint == tmp_path / "model_oracle" / "checkpoint.pt"
    assert p.evaluation_files.topk("graphrec", "cold") == tmp_path / "evaluation" / "topk" / "graphrec_cold.csv"
    assert p.evaluation_files.metrics == tmp_path / "evaluation" / "metrics.json"
    assert p.serve_files.embeddings == tmp_path / "serve" / "added_embeddings.pt"
    assert p.serve_files.uploads == tmp_path / "serve" / "uploads"
    run = p.benchmark_run(2)
    assert run.split == tmp_path / "benchmark" / "run2" / "split" and run.prepared == p.prepared
    assert ModelPaths(p.model).stamp.name == STAGE_STAMP == STAMP


def test_model_paths_scorer_is_where_the_train_stage_writes_it(tmp_path):
    from graphrec.paths import ModelPaths
    from graphrec.stages.train import SCORER_FILE

    assert ModelPaths(tmp_path).scorer == tmp_path / SCORER_FILE


def test_benchmark_paths(tmp_path):
    from graphrec.paths import RunPaths

    p = RunPaths(tmp_path)
    assert p.benchmark_summary == tmp_path / "benchmark" / "summary.json"
    assert p.benchmark_log(3) == tmp_path / "benchmark" / "run3.log"
    assert p.benchmark_run(1).run_record == tmp_path / "benchmark" / "run1" / "run.json"
