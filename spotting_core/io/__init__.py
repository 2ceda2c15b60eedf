"""SoccerNet file formats, video files, ffmpeg and downloads: everything that reads or writes a file."""
