"""DataLoader workers forked after the parent used cv2 must not deadlock (cv2's pool and fork)."""
import os
import subprocess
import sys
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

SCRIPT = textwrap.dedent("""
    import sys, cv2, numpy as np, torch
    from torch.utils.data import DataLoader, Dataset
    from cauchy.datasets.io import read_image
    root = sys.argv[1]
    for i in range(32):  # the parent resizes (cv2's pool) before the workers fork
        image = cv2.resize(np.full((12, 16, 3), i, np.uint8), (500, 375), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(f"{root}/{i}.jpg", image)

    class Images(Dataset):
        def __len__(self):
            return 32

        def __getitem__(self, i):
            return torch.from_numpy(cv2.resize(read_image(f"{root}/{i}.jpg"), (300, 300)))

    for _ in range(2):
        assert sum(len(b) for b in DataLoader(Images(), batch_size=8, num_workers=2)) == 32
    print("done")
""")


def test_workers_after_parent_cv2_work(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr
