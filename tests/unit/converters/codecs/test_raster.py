"""Raster codec: byte-identical passthrough, re-encoding on resize or format change, EXIF, bad files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.codecs.raster import RASTER_EXTENSIONS, load_raster
from medcat_data.errors import SampleError
from tests.fixtures.synth import RasterFactory


def pixels_of(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.mark.parametrize(("fmt", "mode"), [("png", "RGB"), ("png", "L"), ("png", "I;16"), ("jpeg", "RGB"), ("jpeg", "L"), ("tiff", "RGB"), ("bmp", "RGB")])
def test_passthrough_is_byte_identical(fmt: str, mode: str, raster_factory: RasterFactory) -> None:
    path = raster_factory(f"pass-{fmt}-{mode}", fmt, mode=mode)
    for options in (ImageOptions(), ImageOptions(output_format=fmt if fmt in ("png", "jpeg") else None), ImageOptions(max_size=40)):
        image = load_raster(path, options)
        assert image.data == path.read_bytes()
        assert (image.format, image.width, image.height, image.scale) == (fmt, 40, 30, 1.0)
        assert (image.original_width, image.original_height, dict(image.attributes)) == (40, 30, {})


def test_resize_re_encodes_png_with_scale(raster_factory: RasterFactory) -> None:
    path = raster_factory("resize-png", "png", size=(80, 60))
    image = load_raster(path, ImageOptions(max_size=40, resample="bilinear"))
    assert (image.format, image.width, image.height, image.original_width, image.original_height, image.scale) == ("png", 40, 30, 80, 60, 0.5)
    expected = np.asarray(Image.open(path).resize((40, 30), Image.Resampling.BILINEAR))
    assert np.array_equal(pixels_of(image.data), expected)


def test_16_bit_png_stays_16_bit_when_resized(raster_factory: RasterFactory) -> None:
    path = raster_factory("resize-16", "png", size=(80, 60), mode="I;16")
    out = pixels_of(load_raster(path, ImageOptions(max_size=40)).data)
    assert out.dtype == np.uint16 and out.shape == (30, 40) and out.max() > 255


def test_format_change_to_jpeg_and_to_png(raster_factory: RasterFactory) -> None:
    png = raster_factory("to-jpeg", "png")
    jpeg = load_raster(png, ImageOptions(output_format="jpeg"))
    assert jpeg.format == "jpeg" and jpeg.data[:2] == b"\xff\xd8" and jpeg.scale == 1.0
    assert np.abs(pixels_of(jpeg.data).astype(int) - np.asarray(Image.open(png)).astype(int)).mean() < 8
    bmp = raster_factory("to-png", "bmp")
    converted = load_raster(bmp, ImageOptions(output_format="png"))
    assert converted.format == "png"
    assert np.array_equal(pixels_of(converted.data), np.asarray(Image.open(bmp)))


def test_exif_orientation_is_applied_when_re_encoding(synth_dir: Path) -> None:
    stored = np.zeros((30, 40, 3), np.uint8)
    stored[...] = (0, 0, 255)
    stored[:15, :20] = (255, 0, 0)  # red in the stored top-left quadrant
    path = synth_dir / "raster" / "oriented.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    Image.fromarray(stored).save(path, exif=exif)
    passthrough = load_raster(path, ImageOptions())
    assert (passthrough.width, passthrough.height) == (40, 30)  # verbatim bytes, stored geometry
    image = load_raster(path, ImageOptions(max_size=20, resample="nearest"))
    assert (image.width, image.height, image.original_width, image.original_height) == (15, 20, 30, 40)
    out = pixels_of(image.data)
    assert tuple(out[2, -2]) == (255, 0, 0)  # stored top-left is now top-right
    assert tuple(out[-2, 2]) == (0, 0, 255)


def test_palette_png_is_re_encoded_as_rgb(synth_dir: Path) -> None:
    path = synth_dir / "raster" / "palette.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4).convert("P").save(path)
    out = pixels_of(load_raster(path, ImageOptions(max_size=4, resample="nearest")).data)
    assert out.shape[:2] == (4, 4)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_truncated_image_is_a_decode_error(fmt: str, raster_factory: RasterFactory, tmp_path: Path) -> None:
    whole = raster_factory(f"trunc-{fmt}", fmt, size=(256, 256))
    cut = tmp_path / whole.name
    cut.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 2])
    with pytest.raises(SampleError) as err:
        load_raster(cut, ImageOptions())
    assert err.value.stage == "decode" and err.value.path == str(cut)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_verified_bytes_are_passed_through_without_a_pixel_decode_but_a_cut_file_still_fails(
    fmt: str, raster_factory: RasterFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = raster_factory(f"verified-{fmt}", fmt, size=(256, 256))
    cut = tmp_path / whole.name
    cut.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 2])
    loads: list[str] = []
    real_load = Image.Image.load

    def counting_load(self: Image.Image):  # type: ignore[no-untyped-def]
        loads.append(self.format or "")
        return real_load(self)

    monkeypatch.setattr(Image.Image, "load", counting_load)
    image = load_raster(whole, ImageOptions(), verified=True)
    assert image.data == whole.read_bytes() and (image.width, image.height) == (256, 256)
    assert loads == []
    with pytest.raises(SampleError) as err:
        load_raster(cut, ImageOptions(), verified=True)
    assert err.value.stage == "decode" and loads


def test_non_image_and_unsupported_formats_are_read_errors(tmp_path: Path) -> None:
    text = tmp_path / "scan.png"
    text.write_text("not an image")
    gif = tmp_path / "anim.gif"
    Image.new("L", (4, 4)).save(gif)
    for path, reason in ((text, "not a readable image"), (gif, "unsupported image format 'GIF'"), (tmp_path / "missing.png", "not a readable image")):
        with pytest.raises(SampleError) as err:
            load_raster(path, ImageOptions())
        assert err.value.stage == "read" and reason in err.value.reason


def test_raster_extensions_are_the_documented_set() -> None:
    assert RASTER_EXTENSIONS == (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
