"""What only the book's chapters use: their figures and tables, the sentences they check, the values they publish to
the website, the setup chapter's report, the protocol chapter's table and the playground.

The reusable package (encoders, scenes, probes, LABCLIP, benchmarks, downloads) imports nothing from here; a reader
who uses ``labclip_utils`` outside the book never needs it.
"""
