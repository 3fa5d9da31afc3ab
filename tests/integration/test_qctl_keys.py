"""test_qctl_keys.py: qctl's offline key commands. `keys generate` writes NAME.pub (64 hex
digits) and NAME.key (128 hex digits, mode 0600) and never overwrites; `keys sign` writes a
64-byte Ed25519 signature (deterministic: signing again gives the same bytes; that it verifies
with the public key is tests/unit/udf/test_artifact.c's job) and fails with one line on a bad
key file."""
import os
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import BUILD, check, eq, run_tests  # noqa: E402


def qctl(*args):
    return subprocess.run([os.path.join(BUILD, "qctl")] + list(args), capture_output=True,
                          text=True, timeout=60)


def t_keys():
    d = tempfile.mkdtemp(prefix="qd-keys-")
    keys = os.path.join(d, "keys")
    p = qctl("keys", "generate", "--out", keys, "--name", "release")
    eq(p.returncode, 0, "generate exit: " + p.stderr)
    pub, key = os.path.join(keys, "release.pub"), os.path.join(keys, "release.key")
    check("release.pub" in p.stdout and "release.key" in p.stdout, "generate output", p.stdout)
    eq(stat.S_IMODE(os.stat(key).st_mode), 0o600, "private key mode")
    with open(pub) as f:
        text = f.read()
    check(len(text) == 65 and all(c in "0123456789abcdef" for c in text.strip()), "pub", text)
    with open(key) as f:
        ktext = f.read().strip()
    check(len(ktext) == 128 and ktext[64:] == text.strip(), "the secret key ends in the public")
    p = qctl("keys", "generate", "--out", keys, "--name", "release")
    check(p.returncode == 1 and "not overwritten" in p.stderr
          and p.stderr.count("\n") == 1, "no overwrite", p.stderr)
    art = os.path.join(d, "a.qdn")
    with open(art, "wb") as f:
        f.write(b"QDNATIV1 any bytes can be signed")
    p = qctl("keys", "sign", "--key", key, "--in", art)
    eq(p.returncode, 0, "sign exit: " + p.stderr)
    with open(art + ".sig", "rb") as f:
        sig1 = f.read()
    eq(len(sig1), 64, "signature size")
    p = qctl("keys", "sign", "--key", key, "--in", art, "--out", os.path.join(d, "b.sig"))
    with open(os.path.join(d, "b.sig"), "rb") as f:
        eq(f.read(), sig1, "Ed25519 is deterministic: the same signature again")
    p = qctl("keys", "sign", "--key", pub, "--in", art)
    check(p.returncode == 1 and "not an Ed25519 secret key" in p.stderr, "bad key", p.stderr)
    shutil.rmtree(d)


if __name__ == "__main__":
    run_tests([("qctl_keys_generate_and_sign", t_keys)])
