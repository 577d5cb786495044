package sqlite

// InlineVersions is the most phones a change may touch for its call to
// return with their versions computed.
const InlineVersions = inlineVersions
