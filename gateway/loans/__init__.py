"""信易贷: loan products, financing demands, matching, 名单推荐 and the 发起—响应—反馈 loop."""
