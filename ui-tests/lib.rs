//! trybuild cases live in pass/ and fail/.
