"""No metadata leaks: outputs carry no EXIF (GPS!), XMP, comments or profiles."""

from __future__ import annotations

import struct

import pytest
from PIL import ExifTags, Image, ImageCms

from imagepipe.processing import render
from imagepipe.spec import DEFAULT_SPEC, VariantList
from tests.core.imaging import decode, encoded, riff_chunks

MAKER = "LeakyCam"
COMMENT = b"private comment: home address"
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf'
    b'-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator='
    b'"secret-creator"/></rdf:RDF></x:xmpmeta>'
)
# Strings that must not appear anywhere in an output.
TELLTALES = [MAKER.encode(), b"secret-creator", b"home address", b"Exif\0\0", b"GPS"]
# VP8X flags: ICC profile, EXIF, XMP (the ALPHA flag is allowed).
VP8X_METADATA_FLAGS = 0x20 | 0x08 | 0x04


def exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = MAKER
    exif[ExifTags.Base.Orientation] = 1
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 22.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (4.0, 53.0, 30.2)
    return exif


def picture() -> Image.Image:
    image = Image.linear_gradient("L").resize((1200, 900)).convert("RGB")
    return Image.merge("RGB", (image.getchannel(0), image.rotate(90).getchannel(0), image.getchannel(0)))


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def jpeg_with_everything() -> bytes:
    data = encoded(
        picture(),
        "JPEG",
        exif=exif_with_gps(),
        xmp=XMP,
        comment=COMMENT,
        icc_profile=srgb_profile(),
    )
    # The source really carries it all.
    source = decode(data)
    assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] == "N"
    assert source.info["comment"] == COMMENT and "icc_profile" in source.info
    assert b"secret-creator" in data
    return data


def sources() -> dict[str, bytes]:
    rgba = picture().convert("RGBA")
    rgba.putalpha(200)  # keeps the alpha channel, so VP8X + ALPH
    return {
        "jpeg": jpeg_with_everything(),
        "png": encoded(rgba, "PNG", exif=exif_with_gps(), icc_profile=srgb_profile()),
        "webp": encoded(picture(), "WEBP", exif=exif_with_gps(), xmp=XMP, icc_profile=srgb_profile()),
    }


@pytest.mark.parametrize("kind", ["jpeg", "png", "webp"])
def test_webp_outputs_hold_only_picture_chunks(kind: str) -> None:
    rendered = render(sources()[kind], DEFAULT_SPEC)
    # large keeps the source size (an unresampled copy), the others are resized.
    assert (rendered.variants[2].width, rendered.variants[2].height) == (1200, 900)
    for variant in rendered.variants:
        chunks = riff_chunks(variant.data)
        assert set(chunks) <= {"VP8 ", "VP8L", "VP8X", "ALPH"}, chunks
        if chunks[0] == "VP8X":
            flags = variant.data[20]
            assert not flags & VP8X_METADATA_FLAGS, f"VP8X flags {flags:#04x}"
        for telltale in TELLTALES:
            assert telltale not in variant.data, telltale
        image = decode(variant.data)
        assert not {"exif", "xmp", "icc_profile", "XML:com.adobe.xmp"} & set(image.info)
        assert len(image.getexif()) == 0


def jpeg_segments(data: bytes) -> list[int]:
    """Marker bytes of the segments before the first scan."""
    markers, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    return markers


def png_chunks(data: bytes) -> list[bytes]:
    chunks, pos = [], 8
    while pos + 8 <= len(data):
        size = struct.unpack(">I", data[pos : pos + 4])[0]
        chunks.append(data[pos + 4 : pos + 8])
        pos += 12 + size
    return chunks


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_jpeg_and_png_outputs_carry_no_metadata_either(fmt: str) -> None:
    spec = VariantList.from_data(
        [{"name": "v", "width": 400, "height": 300, "method": "fit", "encoding": {"format": fmt}}]
    )
    data = render(jpeg_with_everything(), spec).variants[0].data
    for telltale in TELLTALES:
        assert telltale not in data, telltale
    if fmt == "jpeg":
        segments = jpeg_segments(data)
        # APP0 (JFIF) and the picture's own tables only: no APP1 (EXIF, XMP),
        # APP2 (ICC), COM.
        assert not {0xE1, 0xE2, 0xFE} & set(segments), [hex(m) for m in segments]
    else:
        chunks = png_chunks(data)
        assert not {b"eXIf", b"iCCP", b"tEXt", b"zTXt", b"iTXt"} & set(chunks), chunks
    image = decode(data)
    assert not {"exif", "xmp", "icc_profile", "comment"} & set(image.info)
