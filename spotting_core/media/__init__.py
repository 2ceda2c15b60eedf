"""Highlight reels: shot boundaries, plans of padded, snapped, merged segments, cutting them with ffmpeg, edit lists."""
