/*
 * cs-fs.h — file-system work shared by the daemon's layers and its tools.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Remove the folder @name of the folder open at @parent_fd and everything in it, never
 * following a symbolic link: a folder swapped for a link meanwhile is left alone, and
 * nothing outside it is removed. Errors are ignored: what could not be removed stays. */
void cs_remove_tree_at(int parent_fd, const char *name);

/* The same for the folder at @path. */
void cs_remove_tree(const char *path);

G_END_DECLS
