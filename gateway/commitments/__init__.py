"""信易批 commitments (信用承诺): 容缺受理 and 告知承诺, tracked to their due date."""
