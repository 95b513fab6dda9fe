#!/usr/bin/env Rscript
# analyze.R: the final figure of session5.Rmd (boxplots with jittered points of the trials' test
# accuracy and loss, supervised vs self-supervised, one facet per variable) drawn with ggplot2
# from a pretext results file read with hdf5r, for R users. Base R reshapes the data (the seed
# used dplyr/tidyr; they are not needed here).
#
# Usage: Rscript scripts/analyze.R FILE [OUT.png]
#   OUT.png defaults to <stem>-analysis/comparison-ggplot.png next to FILE (the folder
#   scripts/analyze.py writes into). Layout of FILE: docs/results-format.md.

suppressPackageStartupMessages({
  library(hdf5r)
  library(ggplot2)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 1 || length(args) > 2 || args[1] %in% c("-h", "--help")) {
  cat("usage: Rscript analyze.R FILE [OUT.png]\n")
  quit(status = if (length(args) >= 1 && args[1] %in% c("-h", "--help")) 0 else 2)
}
path <- args[1]
if (!file.exists(path)) stop("analyze.R: no such file: ", path, call. = FALSE)
stem <- sub("\\.[^.]*$", "", basename(path))
out <- if (length(args) == 2) args[2] else
  file.path(dirname(path), paste0(stem, "-analysis"), "comparison-ggplot.png")
dir.create(dirname(out), showWarnings = FALSE, recursive = TRUE)

## read the finished trials of both kinds
f <- H5File$new(path, mode = "r")
if (!identical(h5attr(f, "format"), "pretext-results"))
  stop("analyze.R: ", path, " was not written by pretext", call. = FALSE)
labels <- h5attr(f[["config"]], "trials.labels")
read_kind <- function(kind, method) {
  g <- f[[paste0("trials/", kind)]]
  done <- g[["done"]]$read() == 1
  data.frame(loss = g[["test_loss"]]$read()[done],
             accuracy = g[["test_accuracy"]]$read()[done],
             method = rep(method, sum(done)))
}
testerr <- rbind(read_kind("supervised", "Supervised"),
                 read_kind("self_supervised", "Self-supervised"))
f$close_all()
if (nrow(testerr) == 0) stop("analyze.R: ", path, " holds no finished trials", call. = FALSE)

## long format, like tidyr::gather(key = "variable", value = "value", accuracy, loss)
long <- rbind(data.frame(method = testerr$method, variable = "accuracy", value = testerr$accuracy),
              data.frame(method = testerr$method, variable = "loss", value = testerr$loss))
long$method <- factor(long$method, levels = c("Supervised", "Self-supervised"))

set.seed(42) # the jitter: the same file gives the same figure
plot <- ggplot(long, aes(x = method, y = value)) +
  geom_boxplot() +
  geom_jitter(alpha = 0.7, width = 0.3) +
  facet_wrap(~ variable, scales = "free") +
  labs(title = paste0("Test accuracy and loss of the trials, ", labels, " labelled images each"),
       subtitle = basename(path))
ggsave(out, plot, width = 7, height = 4.5, dpi = 100)

counts <- table(testerr$method)
cat(sprintf("analyze.R: %s trials (%s): wrote %s\n", paste(names(counts), counts, sep = " ", collapse = ", "),
            path, out))
