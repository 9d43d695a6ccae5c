#!/usr/bin/env python3
"""Draw docs/img/result-message.png: a mock-up of a jamgen result message for the README.

No Discord runs here, so the picture is an HTML imitation of the message the bot posts
(bot/discord/render.py ``result_embeds`` and bot/discord/views.py ``result_view``), with a
waveform drawn by jamgen's own ``bot.audio.waveform_png`` from a synthetic beat, photographed by
headless Chromium (Debian: ``apt-get install chromium``).

    .venv/bin/python scripts/render_mockup.py
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.audio import waveform_png  # noqa: E402

OUT = ROOT / "docs" / "img" / "result-message.png"
WIDTH, HEIGHT = 760, 500


def synthetic_beat(seconds: float = 12.0, rate: int = 32000, bpm: float = 80.0) -> np.ndarray:
    """A kick on every beat, a snare on 2 and 4 and a swelling chord: enough shape for a waveform.

    Args:
        seconds: length.
        rate: sample rate.
        bpm: tempo.
    """
    t = np.arange(int(seconds * rate)) / rate
    beat = 60.0 / bpm
    phase = t % beat
    kick = np.sin(2 * np.pi * 55 * phase) * np.exp(-phase * 9)
    bar_phase = t % (2 * beat)
    snare = np.random.default_rng(7).standard_normal(t.size) * np.exp(-np.abs(bar_phase - beat) * 30) * 0.35
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 261.6, 329.6)) / 3
    swell = 0.25 + 0.2 * np.sin(2 * np.pi * t / (8 * beat)) ** 2
    return (0.55 * kick + snare + swell * chord).astype(np.float32)


def page(waveform_png_bytes: bytes) -> str:
    """The HTML of the mock-up.

    Args:
        waveform_png_bytes: the waveform picture.
    """
    wave = base64.b64encode(waveform_png_bytes).decode()
    fields = [
        ("Model", "medium"),
        ("Mode", "text"),
        ("Duration", "12.0 s"),
        ("Seed", "1928374650"),
        ("Tempo", "80 BPM"),
        ("Key", "A minor"),
        ("Made in", "9.4 s"),
    ]
    cells = "".join(f'<div class="f"><b>{name}</b><span>{value}</span></div>' for name, value in fields)
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin:0; background:#313338; font-family:"DejaVu Sans",sans-serif; color:#dbdee1; font-size:15px; }}
.msg {{ display:flex; padding:18px 20px 10px 16px; }}
.av {{ width:40px; height:40px; border-radius:50%; background:#7c5cff; color:#fff; font-weight:bold;
      display:flex; align-items:center; justify-content:center; margin-right:14px; flex:none; }}
.name {{ color:#fff; font-weight:bold; }} .tag {{ background:#5865f2; color:#fff; font-size:10px;
      padding:1px 4px; border-radius:3px; margin:0 6px; vertical-align:2px; }}
.time {{ color:#949ba4; font-size:12px; }} .mention {{ background:#3c4270; color:#c9cdfb; padding:0 2px; }}
.embed {{ margin-top:6px; background:#2b2d31; border-left:4px solid #7c5cff; border-radius:4px;
      padding:10px 14px 12px 12px; width:560px; }}
.title {{ color:#fff; font-weight:bold; margin-bottom:8px; }}
.fields {{ display:grid; grid-template-columns:repeat(3, 1fr); gap:8px 14px; font-size:14px; }}
.f b {{ display:block; color:#fff; font-size:13px; }} .wave {{ margin-top:10px; width:100%;
      border-radius:4px; background:#1e1f22; }}
.foot {{ margin-top:8px; font-size:12px; color:#b5bac1; }}
.file {{ margin-top:6px; width:560px; background:#2b2d31; border:1px solid #1e1f22; border-radius:8px;
      padding:10px 14px; display:flex; align-items:center; gap:10px; }}
.play {{ width:28px; height:28px; border-radius:50%; background:#dbdee1; color:#2b2d31; text-align:center;
      line-height:28px; font-size:13px; }} .bar {{ flex:1; height:4px; background:#4e5058; border-radius:2px; }}
.fn {{ color:#00a8fc; font-size:14px; }}
.row {{ margin-top:8px; display:flex; gap:8px; }}
.btn {{ background:#4e5058; color:#fff; padding:5px 14px; border-radius:4px; font-size:14px; }}
.primary {{ background:#5865f2; }} .danger {{ background:#da373c; }}
.cap {{ color:#949ba4; font-size:12px; text-align:right; padding:0 20px 8px 0; font-style:italic; }}
</style></head><body>
<div class="msg"><div class="av">jg</div><div>
<div><span class="name">jamgen</span><span class="tag">APP</span><span class="time">Today at 21:04</span></div>
<div><span class="mention">@mira</span> here's your take.</div>
<div class="file"><div class="play">▶</div><span class="fn">k7m2q9xa-take1.mp3</span>
<div class="bar"></div><span class="time">0:12</span></div>
<div class="embed"><div class="title">lofi hip hop, 80 bpm, mellow rhodes, vinyl crackle, rainy night</div>
<div class="fields">{cells}</div>
<img class="wave" src="data:image/png;base64,{wave}">
<div class="foot">job k7m2q9xa · take 1/1 · by jamgen</div></div>
<div class="row"><span class="btn">🎲 Reroll</span><span class="btn">ℹ️ Recipe</span>
<span class="btn danger">🗑 Delete</span></div>
<div class="row"><span class="btn primary">⏩ Extend</span><span class="btn">🎛 Remix</span></div>
</div></div>
<div class="cap">mock-up of a jamgen result message (not a screenshot of Discord)</div>
</body></html>"""


def main() -> int:
    """Render the mock-up to docs/img/result-message.png."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        print("needs headless Chromium: apt-get install chromium", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        wave = asyncio.run(waveform_png(synthetic_beat(), 32000, Path(tmp) / "wave.png", width=540, height=90))
        html = Path(tmp) / "mockup.html"
        html.write_text(page(wave.read_bytes()))
        OUT.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--window-size={WIDTH},{HEIGHT}",
                f"--screenshot={OUT}",
                html.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
