//! Which gallery items a search may return.

use std::collections::BTreeSet;

use crate::FileId;

/// A restriction of a search to some gallery items: all three conditions hold for an item
/// returned. The default keeps everything.
///
/// ```
/// use repr_search::{FileId, Filter};
///
/// let filter = Filter::default()
///     .excluding([FileId(3)])
///     .with_labels(["cats", "dogs"])
///     .in_folder("cats/2024");
/// assert!(filter.admits(FileId(1), "cats/2024/a.png", Some("cats")));
/// assert!(!filter.admits(FileId(3), "cats/2024/b.png", Some("cats")));
/// assert!(!filter.admits(FileId(4), "cats/20245/c.png", Some("cats")));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Ids never returned (a stop-list: the query itself, images already seen, ...).
    pub exclude: BTreeSet<FileId>,
    /// When set, only items with one of these labels (top-level folder names); items without
    /// a label are left out.
    pub labels: Option<BTreeSet<String>>,
    /// When set, only items inside this folder (a path relative to the indexed folder,
    /// `/`-separated; leading and trailing `/` ignored; empty: the whole folder). Matched a
    /// whole component at a time: `cats/2024` holds `cats/2024/x.png`, not
    /// `cats/20245/x.png`.
    pub folder: Option<String>,
}

impl Filter {
    /// This filter, also excluding `ids`.
    pub fn excluding(mut self, ids: impl IntoIterator<Item = FileId>) -> Self {
        self.exclude.extend(ids);
        self
    }

    /// This filter, keeping only items labelled with one of `labels`.
    pub fn with_labels<S: Into<String>>(mut self, labels: impl IntoIterator<Item = S>) -> Self {
        self.labels = Some(labels.into_iter().map(Into::into).collect());
        self
    }

    /// This filter, keeping only items inside `folder`.
    pub fn in_folder(mut self, folder: impl Into<String>) -> Self {
        self.folder = Some(folder.into());
        self
    }

    /// Whether the filter keeps every item.
    pub fn keeps_all(&self) -> bool {
        self.exclude.is_empty() && self.labels.is_none() && self.folder_prefix().is_none()
    }

    /// Whether an item with this id, path and label passes the filter.
    pub fn admits(&self, id: FileId, path: &str, label: Option<&str>) -> bool {
        if self.exclude.contains(&id) {
            return false;
        }
        if let Some(labels) = &self.labels
            && !label.is_some_and(|label| labels.contains(label))
        {
            return false;
        }
        match self.folder_prefix() {
            None => true,
            Some(folder) => path
                .strip_prefix(folder)
                .is_some_and(|rest| rest.starts_with('/')),
        }
    }

    /// The folder without surrounding slashes; `None` when it is unset or the whole folder.
    fn folder_prefix(&self) -> Option<&str> {
        let folder = self.folder.as_deref()?.trim_matches('/');
        (!folder.is_empty()).then_some(folder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_leave_out_unlabelled_items_and_the_root_folder_keeps_all() {
        let filter = Filter::default().with_labels(["a"]);
        assert!(filter.admits(FileId(1), "a/x.png", Some("a")));
        assert!(!filter.admits(FileId(1), "x.png", None));
        let root = Filter::default().in_folder("/");
        assert!(root.keeps_all());
        assert!(root.admits(FileId(1), "x.png", None));
        let nested = Filter::default().in_folder("/a/b/");
        assert!(nested.admits(FileId(1), "a/b/c/x.png", Some("a")));
        assert!(!nested.admits(FileId(1), "a/bc/x.png", Some("a")));
        assert!(!nested.admits(FileId(1), "a/b", Some("a")));
    }
}
