#!/usr/bin/env python3
"""tools/fetch-model's download path, offline: a local HTTP server on 127.0.0.1 serves the tiny fixture
checkpoints; a registry points at it. Checks download + conversion, resuming from already-downloaded files,
fallback between alternatives, hash mismatch, an unreachable URL and file:// URLs.
usage: test_fetch_model.py
"""
import contextlib
import functools
import hashlib
import http.server
import io
import json
import shutil
import sys
import tempfile
import threading
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import importlib.util  # noqa: E402

spec = importlib.util.spec_from_loader("fetch_model", loader=None)
fetch_model = importlib.util.module_from_spec(spec)
fetch_model.__file__ = str(ROOT / "tools" / "fetch-model")  # a script without .py: load it by hand
exec(compile((ROOT / "tools" / "fetch-model").read_text(), "fetch-model", "exec"), fetch_model.__dict__)

FIX = ROOT / "tests" / "data" / "fixtures" / "tiny"


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


class FetchModel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        handler = functools.partial(Quiet, directory=str(FIX))
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        cls.base = f"http://127.0.0.1:{cls.server.server_address[1]}"
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()

    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="test_fetch_"))

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def registry(self, files, convert="hf"):
        reg = {"default": "tiny", "models": {"tiny": {"description": "fixture", "licence": "test",
                                                       "convert": convert, "nhead": 2, "files": files}}}
        p = self.dir / "registry.json"
        p.write_text(json.dumps(reg))
        return p

    def fetch(self, reg, *extra):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = fetch_model.main(["--registry", str(reg), "--dir", str(self.dir / "w"), *extra])
        return rc, err.getvalue()

    def test_download_and_convert_with_fallback_and_resume(self):
        sha = hashlib.sha256((FIX / "hf_bin" / "pytorch_model.bin").read_bytes()).hexdigest()
        reg = self.registry([
            {"name": "config.json", "url": f"{self.base}/hf_bin/config.json"},
            {"alternatives": [
                {"name": "model.safetensors", "url": f"{self.base}/hf_bin/model.safetensors"},  # 404: fall back
                {"name": "pytorch_model.bin", "url": f"{self.base}/hf_bin/pytorch_model.bin", "sha256": sha}]}])
        rc, err = self.fetch(reg)
        self.assertEqual(rc, 0, err)
        out = self.dir / "w" / "tiny.safetensors"
        self.assertTrue(out.exists())
        self.assertIn("404", err)
        from safetensors import safe_open
        with safe_open(str(out), "np") as f:
            self.assertEqual(f.metadata()["model_name"], "tiny")
        rc, err = self.fetch(reg)  # second run: nothing downloaded again
        self.assertEqual(rc, 0, err)
        self.assertNotIn("downloading", err)

    def test_hash_mismatch(self):
        reg = self.registry([{"name": "config.json", "url": f"{self.base}/hf_bin/config.json", "md5": "0" * 32}])
        rc, err = self.fetch(reg)
        self.assertEqual(rc, 1)
        self.assertIn("does not match the registry's hash", err)
        self.assertFalse((self.dir / "w" / "downloads" / "tiny" / "config.json").exists())

    def test_unreachable(self):
        reg = self.registry([{"name": "config.json", "url": "http://127.0.0.1:9/config.json"}])
        rc, err = self.fetch(reg)
        self.assertEqual(rc, 1)
        self.assertIn("cannot download", err)

    def test_file_urls_dcase2024(self):
        d = FIX / "dcase2024"
        reg = self.registry([
            {"name": "best.ckpt", "role": "checkpoint", "url": (d / "best.ckpt").as_uri()},
            {"name": "tokenizer.json", "role": "tokenizer", "url": (d / "tokenizer.json").as_uri()},
            {"name": "enc.pth", "role": "encoder", "url": (d / "convnext_tiny_fixture.pth").as_uri()}],
            convert="dcase2024")
        rc, err = self.fetch(reg)
        self.assertEqual(rc, 0, err)
        from safetensors import safe_open
        with safe_open(str(self.dir / "w" / "tiny.safetensors"), "np") as f:
            self.assertEqual(json.loads(f.metadata()["hparams"])["decoder"]["nhead"], 2)

    def test_unknown_name(self):
        rc, err = self.fetch(self.registry([]), "nope")
        self.assertEqual(rc, 2)
        self.assertIn("unknown model", err)


if __name__ == "__main__":
    res = unittest.main(exit=False, verbosity=1, argv=[sys.argv[0]]).result
    failed = len(res.failures) + len(res.errors)
    print(f"test_fetch_model: {res.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
