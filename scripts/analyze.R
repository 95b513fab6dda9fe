#!/usr/bin/env Rscript
# analyze.R: for R users, from a pretext results file read with hdf5r:
#   - the summary table of scripts/analyze.py (summary.csv's columns and rows), computed with R's
#     own functions: quantile(), t.test() for the 95% CI of the mean and Welch's test,
#     wilcox.test() for Mann-Whitney U;
#   - the final figure of session5.Rmd (boxplots with jittered points of the trials' test accuracy
#     and loss, supervised vs self-supervised, one facet per variable) drawn with ggplot2. Base R
#     reshapes the data (the seed used dplyr/tidyr; they are not needed here).
#
# Usage: Rscript scripts/analyze.R FILE [OUT.png] [--csv OUT.csv] [--no-plot]
#   OUT.png defaults to <stem>-analysis/comparison-ggplot.png next to FILE (the folder
#   scripts/analyze.py writes into), OUT.csv to summary-R.csv in OUT.png's folder. Reads results
#   format 1 and 2 (several seeds and label budgets in one file: one table block per seed and
#   budget; the figure then pools the seeds, one column of panels per budget). Layout of FILE:
#   docs/results-format.md; the columns: docs/analysis.md. Needs hdf5r; ggplot2 for the figure
#   (without it the figure is skipped with a message).

usage <- "usage: Rscript analyze.R FILE [OUT.png] [--csv OUT.csv] [--no-plot]\n"
die <- function(...) {
  cat("analyze.R: error: ", ..., "\n", sep = "", file = stderr())
  quit(status = 1)
}

args <- commandArgs(trailingOnly = TRUE)
if (any(args %in% c("-h", "--help"))) {
  cat(usage)
  quit(status = 0)
}
csv_out <- NULL
plot_wanted <- TRUE
positional <- character(0)
i <- 1
while (i <= length(args)) {
  a <- args[i]
  if (a == "--csv") {
    if (i == length(args)) { cat("analyze.R: error: --csv needs a file name\n", usage, file = stderr(), sep = ""); quit(status = 2) }
    csv_out <- args[i + 1]
    i <- i + 1
  } else if (a == "--no-plot") {
    plot_wanted <- FALSE
  } else if (startsWith(a, "-")) {
    cat("analyze.R: error: unknown option '", a, "'\n", usage, file = stderr(), sep = "")
    quit(status = 2)
  } else {
    positional <- c(positional, a)
  }
  i <- i + 1
}
if (length(positional) < 1 || length(positional) > 2) {
  cat(usage, file = stderr())
  quit(status = 2)
}
if (!requireNamespace("hdf5r", quietly = TRUE))
  die("the R package hdf5r is not installed (Debian: apt-get install r-cran-hdf5r; CRAN: install.packages(\"hdf5r\"))")
suppressPackageStartupMessages(library(hdf5r))

path <- positional[1]
if (!file.exists(path)) die(path, ": no such file")
stem <- sub("\\.[^.]*$", "", basename(path))
out <- if (length(positional) == 2) positional[2] else
  file.path(dirname(path), paste0(stem, "-analysis"), "comparison-ggplot.png")
if (is.null(csv_out)) csv_out <- file.path(dirname(out), "summary-R.csv")

## read the trials of both kinds as one tidy table (format 1: seed and budget from /config)
f <- tryCatch(H5File$new(path, mode = "r"), error = function(e) die(path, " is not a readable HDF5 file (", conditionMessage(e), ")"))
attr_or <- function(obj, name, default) if (name %in% h5attr_names(obj)) h5attr(obj, name) else default
if (!identical(attr_or(f, "format", ""), "pretext-results")) die(path, " was not written by pretext (no format = pretext-results)")
version <- as.integer(attr_or(f, "format_version", 1L))
if (!(version %in% c(1L, 2L))) die(path, ": format_version ", version, " is not one this script reads (1, 2)")
config <- f[["config"]]
kinds <- c("supervised", "self_supervised")
read_kind <- function(kind) {
  g <- f[[paste0("trials/", kind)]]
  done <- g[["done"]]$read() == 1
  n <- length(done)
  if (version >= 2) {
    seed <- as.character(g[["experiment_seed"]]$read())  # integer64: exact below 2^63
    labels <- as.integer(g[["labels"]]$read())
  } else {
    seed <- rep(as.character(h5attr(config, "experiment.seed")), n)
    labels <- rep(as.integer(h5attr(config, "trials.labels")), n)
  }
  data.frame(kind = rep(kind, n), experiment_seed = seed, labels = labels, done = done,
             accuracy = as.numeric(g[["test_accuracy"]]$read()), loss = as.numeric(g[["test_loss"]]$read()),
             stringsAsFactors = FALSE)
}
all_trials <- do.call(rbind, lapply(kinds, read_kind))
v1_group <- if (version == 1) data.frame(experiment_seed = as.character(h5attr(config, "experiment.seed")),
                                         labels = as.integer(h5attr(config, "trials.labels")),
                                         stringsAsFactors = FALSE) else NULL
f$close_all()
trials <- all_trials[all_trials$done, ]

## the summary table: per (seed, budget), variable and kind, as scripts/analyze.py's summary.csv
num <- function(x) ifelse(is.na(x), "nan", sprintf("%.17g", x))
safe <- function(expr) tryCatch(expr, error = function(e) NULL)
# format 1: one run per file, even before its first trial row exists
groups <- if (!is.null(v1_group)) v1_group else unique(all_trials[, c("experiment_seed", "labels")])
groups <- groups[order(as.numeric(groups$experiment_seed), groups$labels), , drop = FALSE]
rows <- list()
for (g in seq_len(nrow(groups))) {
  seed <- groups$experiment_seed[g]
  budget <- groups$labels[g]
  sel <- trials[trials$experiment_seed == seed & trials$labels == budget, ]
  for (v in c("accuracy", "loss")) {
    x <- sel[sel$kind == "supervised", v]
    y <- sel[sel$kind == "self_supervised", v]
    w <- if (length(x) > 0 && length(y) > 0) safe(suppressWarnings(wilcox.test(x, y))) else NULL
    method <- if (is.null(w)) "n/a" else if (length(x) < 50 && length(y) < 50 && !any(duplicated(c(x, y)))) "exact" else "normal"
    tt <- if (length(x) > 1 && length(y) > 1) safe(t.test(x, y)) else NULL
    for (kind in kinds) {
      z <- sel[sel$kind == kind, v]
      n <- length(z)
      q <- if (n > 0) unname(quantile(z, c(0.25, 0.5, 0.75), type = 7)) else c(NA, NA, NA)
      ci <- if (n > 1) safe(t.test(z)$conf.int) else NULL
      rows[[length(rows) + 1]] <- data.frame(
        file = path, labels = budget, variable = v, kind = kind, n = n,
        mean = num(if (n > 0) mean(z) else NA), sd = num(if (n > 1) sd(z) else NA),
        median = num(q[2]), q1 = num(q[1]), q3 = num(q[3]), iqr = num(q[3] - q[1]),
        ci95_low = num(if (is.null(ci)) NA else ci[1]), ci95_high = num(if (is.null(ci)) NA else ci[2]),
        mann_whitney_u = num(if (is.null(w)) NA else unname(w$statistic)),
        mann_whitney_p = num(if (is.null(w)) NA else w$p.value), mann_whitney_method = method,
        welch_t = num(if (is.null(tt)) NA else unname(tt$statistic)),
        welch_df = num(if (is.null(tt)) NA else unname(tt$parameter)),
        welch_p = num(if (is.null(tt)) NA else tt$p.value),
        experiment_seed = seed, stringsAsFactors = FALSE)
    }
  }
}
columns <- c("file", "labels", "variable", "kind", "n", "mean", "sd", "median", "q1", "q3", "iqr", "ci95_low",
             "ci95_high", "mann_whitney_u", "mann_whitney_p", "mann_whitney_method", "welch_t", "welch_df",
             "welch_p", "experiment_seed")
table <- if (length(rows) > 0) do.call(rbind, rows) else
  as.data.frame(setNames(replicate(length(columns), character(0), simplify = FALSE), columns))
dir.create(dirname(csv_out), showWarnings = FALSE, recursive = TRUE)
write.csv(table[, columns], csv_out, row.names = FALSE, quote = 1)  # quote the file column only

## the seed's final figure
plot_msg <- ""
if (plot_wanted && nrow(trials) == 0) {
  plot_msg <- "; figure skipped: no finished trials"
  plot_wanted <- FALSE
}
if (plot_wanted && !requireNamespace("ggplot2", quietly = TRUE)) {
  plot_msg <- "; figure skipped: the R package ggplot2 is not installed (Debian: r-cran-ggplot2)"
  plot_wanted <- FALSE
}
if (plot_wanted) {
  suppressPackageStartupMessages(library(ggplot2))
  method_names <- c(supervised = "Supervised", self_supervised = "Self-supervised")
  ## long format, like tidyr::gather(key = "variable", value = "value", accuracy, loss)
  long <- rbind(data.frame(method = method_names[trials$kind], labels = trials$labels, variable = "accuracy", value = trials$accuracy),
                data.frame(method = method_names[trials$kind], labels = trials$labels, variable = "loss", value = trials$loss))
  long$method <- factor(long$method, levels = method_names)
  set.seed(42) # the jitter: the same file gives the same figure
  several <- nrow(groups) > 1
  plot <- ggplot(long, aes(x = method, y = value)) +
    geom_boxplot() +
    geom_jitter(alpha = 0.7, width = 0.3)
  if (several) {
    plot <- plot + facet_grid(variable ~ labels, scales = "free_y") +
      labs(title = paste0("Test accuracy and loss of the trials by labelled images (columns), ",
                          length(unique(groups$experiment_seed)), " seed(s) pooled"),
           subtitle = basename(path))
  } else {
    plot <- plot + facet_wrap(~ variable, scales = "free") +
      labs(title = paste0("Test accuracy and loss of the trials, ", groups$labels[1], " labelled images each"),
           subtitle = basename(path))
  }
  dir.create(dirname(out), showWarnings = FALSE, recursive = TRUE)
  ggsave(out, plot, width = if (several) 4 + 2 * length(unique(groups$labels)) else 7, height = if (several) 6 else 4.5, dpi = 100)
  plot_msg <- paste0("; wrote ", out)
}

counts <- table(factor(trials$kind, levels = kinds))
cat(sprintf("analyze.R: %s finished trials (%s): wrote %s%s\n",
            paste(names(counts), counts, sep = " ", collapse = ", "), path, csv_out, plot_msg))
