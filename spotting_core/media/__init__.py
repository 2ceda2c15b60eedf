"""Highlight reels: plans of padded, merged segments, cutting them with ffmpeg, edit lists."""
