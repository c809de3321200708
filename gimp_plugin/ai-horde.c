/* ai-horde.c: GIMP 2.10 plug-in, Filters > AI Horde... (docs/gimp.md).
 *
 * Paints the selection (or the whole image) through a horde: txt2img, img2img or inpainting.
 * The plug-in only moves pixels: it exports the visible pixels of the image and the selection's
 * shape (over its bounds) as raw files, writes a JSON job, and runs our Python client once,
 * `horde gimp-job JOB.json`, which decides the area and size (the Krita docker's rule), talks
 * to the horde and writes one PNG per image. Its stdout is JSON lines (progress, images, errors)
 * read from a GLib main loop, so nothing here blocks; closing its stdin cancels the request.
 * Every image becomes a new layer at the selection, named with its seed.
 *
 * Build and install: ./run gimp-plugin (scripts/gimp_plugin.sh, with gimptool-2.0).
 */
#include <libgimp/gimp.h>
#include <libgimp/gimpui.h>
#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROC_NAME "plug-in-ai-horde"
#define BINARY_NAME "ai-horde"
#define KEY_PARASITE "ai-horde-apikey"
#define CLI_ENV "HORDE_GIMP_CLI"
#ifndef HORDE_CLI
#define HORDE_CLI "horde" /* the build script sets this checkout's .venv/bin/horde */
#endif

enum { MODE_AUTO, MODE_TXT2IMG, MODE_IMG2IMG, MODE_INPAINTING };
static const gchar *const MODE_NAMES[] = { "auto", "txt2img", "img2img", "inpainting" };

/* The last used values (gimp_set_data); the API key is not among them: it lives in a
 * persistent parasite of GIMP's own (parasiterc), never in these values or any log. */
typedef struct
{
  gchar   prompt[1024];
  gchar   negative[1024];
  gint32  mode;
  gdouble strength;
  gint32  seed; /* -1: random */
  gint32  steps;
  gdouble cfg;
  gchar   model[256];
  gint32  n;
  gchar   url[512];
  gint32  min_size;
  gint32  max_size;
} HordeValues;

static const HordeValues DEFAULTS = {
  "", "", MODE_AUTO, 0.6, -1, 30, 7.5, "", 1, "https://aihorde.net", 512, 1024
};

#define N_ARGS 16

/* One run of the CLI, followed from the main loop. */
typedef struct
{
  gint32      image;
  GMainLoop  *loop;
  GIOChannel *out;
  gint        in_fd;       /* the child's stdin: closing it cancels */
  gboolean    out_done;
  gboolean    child_done;
  gint        wait_status;
  gchar      *error;       /* the CLI's error event */
  gint        images;
  GtkWidget  *bar;         /* interactive: the cancel dialog's progress bar, else NULL */
} Run;

static void query (void);
static void run (const gchar *name, gint nparams, const GimpParam *param,
                 gint *nreturn_vals, GimpParam **return_vals);

const GimpPlugInInfo PLUG_IN_INFO = { NULL, NULL, query, run };

MAIN ()

static void
query (void)
{
  static const GimpParamDef args[N_ARGS] = {
    { GIMP_PDB_INT32, "run-mode", "The run mode { RUN-INTERACTIVE (0), RUN-NONINTERACTIVE (1) }" },
    { GIMP_PDB_IMAGE, "image", "Input image" },
    { GIMP_PDB_DRAWABLE, "drawable", "Input drawable (unused: the visible image is read)" },
    { GIMP_PDB_STRING, "prompt", "What to paint" },
    { GIMP_PDB_STRING, "negative", "Negative prompt (may be empty)" },
    { GIMP_PDB_INT32, "mode", "0 auto, 1 txt2img, 2 img2img, 3 inpainting" },
    { GIMP_PDB_FLOAT, "strength", "Denoising strength of img2img/inpainting (0.01..1)" },
    { GIMP_PDB_INT32, "seed", "Seed, -1 for a random one" },
    { GIMP_PDB_INT32, "steps", "Denoising steps" },
    { GIMP_PDB_FLOAT, "cfg", "CFG scale" },
    { GIMP_PDB_STRING, "model", "Model name; empty: the client's configured model (or any)" },
    { GIMP_PDB_INT32, "n", "Number of images (1..20)" },
    { GIMP_PDB_STRING, "url", "Horde URL without /api/v2; empty: the client's configured one" },
    { GIMP_PDB_STRING, "apikey",
      "API key; empty: the stored key, else $HORDE_APIKEY or the client's config" },
    { GIMP_PDB_INT32, "min-size", "Minimum generation side (multiple of 64)" },
    { GIMP_PDB_INT32, "max-size", "Maximum generation side (multiple of 64)" },
  };

  gimp_install_procedure (PROC_NAME,
                          "Paint the selection with Stable Diffusion through an AI Horde",
                          "txt2img, img2img or inpainting of the selection (or the whole image) "
                          "through a horde, by krita-horde's `horde gimp-job`. Every image "
                          "becomes a new layer at the selection, transparent outside it.",
                          "krita-horde", "krita-horde", "2025",
                          "AI _Horde...", "RGB*", GIMP_PLUGIN,
                          N_ARGS, 0, args, NULL);
  gimp_plugin_menu_register (PROC_NAME, "<Image>/Filters/AI Horde");
}

/* --- the API key: a persistent parasite of GIMP's ----------------------------------------- */

static gchar *
stored_key (void)
{
  GimpParasite *parasite = gimp_get_parasite (KEY_PARASITE);
  gchar        *key = NULL;

  if (parasite)
    {
      key = g_strndup (gimp_parasite_data (parasite), gimp_parasite_data_size (parasite));
      gimp_parasite_free (parasite);
    }
  return key;
}

static void
store_key (const gchar *key)
{
  GimpParasite *parasite;

  if (!key || !*key)
    {
      gimp_detach_parasite (KEY_PARASITE);
      return;
    }
  parasite = gimp_parasite_new (KEY_PARASITE, GIMP_PARASITE_PERSISTENT, strlen (key), key);
  gimp_attach_parasite (parasite);
  gimp_parasite_free (parasite);
}

/* --- the dialog ------------------------------------------------------------------------------ */

static GtkWidget *
entry_row (GtkWidget *table, gint row, const gchar *label, const gchar *text, gboolean visible)
{
  GtkWidget *entry = gtk_entry_new ();

  gtk_entry_set_text (GTK_ENTRY (entry), text);
  gtk_entry_set_visibility (GTK_ENTRY (entry), visible);
  gtk_entry_set_width_chars (GTK_ENTRY (entry), 40);
  gimp_table_attach_aligned (GTK_TABLE (table), 0, row, label, 0.0, 0.5, entry, 1, FALSE);
  return entry;
}

static GtkWidget *
spin_row (GtkWidget *table, gint row, const gchar *label, gdouble value, gdouble lower,
          gdouble upper, gdouble step, guint digits)
{
  GtkWidget *spin = gtk_spin_button_new_with_range (lower, upper, step);

  gtk_spin_button_set_digits (GTK_SPIN_BUTTON (spin), digits);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (spin), value);
  gimp_table_attach_aligned (GTK_TABLE (table), 0, row, label, 0.0, 0.5, spin, 1, TRUE);
  return spin;
}

static void
copy_text (gchar *dest, gsize size, GtkWidget *entry)
{
  g_strlcpy (dest, gtk_entry_get_text (GTK_ENTRY (entry)), size);
}

static gint
spin_int (GtkWidget *spin)
{
  return gtk_spin_button_get_value_as_int (GTK_SPIN_BUTTON (spin));
}

static gboolean
horde_dialog (HordeValues *vals, gchar **apikey)
{
  GtkWidget *dialog, *table, *prompt, *negative, *mode, *strength, *seed, *steps, *cfg;
  GtkWidget *model, *n, *url, *key, *min_size, *max_size;
  gboolean   ok;
  gint       row = 0;

  gimp_ui_init (BINARY_NAME, FALSE);
  dialog = gimp_dialog_new ("AI Horde", BINARY_NAME, NULL, 0, gimp_standard_help_func,
                            PROC_NAME, "_Cancel", GTK_RESPONSE_CANCEL, "_OK", GTK_RESPONSE_OK,
                            NULL);
  gtk_dialog_set_default_response (GTK_DIALOG (dialog), GTK_RESPONSE_OK);
  table = gtk_table_new (14, 2, FALSE);
  gtk_table_set_row_spacings (GTK_TABLE (table), 4);
  gtk_table_set_col_spacings (GTK_TABLE (table), 6);
  gtk_container_set_border_width (GTK_CONTAINER (table), 12);
  gtk_box_pack_start (GTK_BOX (gtk_dialog_get_content_area (GTK_DIALOG (dialog))), table,
                      TRUE, TRUE, 0);

  prompt = entry_row (table, row++, "_Prompt:", vals->prompt, TRUE);
  gtk_entry_set_activates_default (GTK_ENTRY (prompt), TRUE);
  negative = entry_row (table, row++, "_Negative prompt:", vals->negative, TRUE);
  mode = gimp_int_combo_box_new ("Auto (shaped selection: inpainting)", MODE_AUTO,
                                 "txt2img", MODE_TXT2IMG, "img2img", MODE_IMG2IMG,
                                 "Inpainting", MODE_INPAINTING, NULL);
  gimp_int_combo_box_set_active (GIMP_INT_COMBO_BOX (mode), vals->mode);
  gimp_table_attach_aligned (GTK_TABLE (table), 0, row++, "_Mode:", 0.0, 0.5, mode, 1, FALSE);
  strength = spin_row (table, row++, "Denoising _strength:", vals->strength, 0.01, 1.0, 0.05, 2);
  seed = spin_row (table, row++, "S_eed (-1 random):", vals->seed, -1, G_MAXINT32, 1, 0);
  steps = spin_row (table, row++, "S_teps:", vals->steps, 1, 500, 1, 0);
  cfg = spin_row (table, row++, "_CFG scale:", vals->cfg, 0, 100, 0.5, 1);
  n = spin_row (table, row++, "_Images:", vals->n, 1, 20, 1, 0);
  model = entry_row (table, row++, "M_odel (empty: any):", vals->model, TRUE);
  min_size = spin_row (table, row++, "Mi_n size:", vals->min_size, 64, 3072, 64, 0);
  max_size = spin_row (table, row++, "Ma_x size:", vals->max_size, 64, 3072, 64, 0);
  url = entry_row (table, row++, "Horde _URL:", vals->url, TRUE);
  key = entry_row (table, row++, "API _key (stored in GIMP):", *apikey ? *apikey : "", FALSE);
  gtk_widget_show_all (dialog);

  ok = gimp_dialog_run (GIMP_DIALOG (dialog)) == GTK_RESPONSE_OK;
  if (ok)
    {
      copy_text (vals->prompt, sizeof vals->prompt, prompt);
      copy_text (vals->negative, sizeof vals->negative, negative);
      gimp_int_combo_box_get_active (GIMP_INT_COMBO_BOX (mode), &vals->mode);
      vals->strength = gtk_spin_button_get_value (GTK_SPIN_BUTTON (strength));
      vals->seed = spin_int (seed);
      vals->steps = spin_int (steps);
      vals->cfg = gtk_spin_button_get_value (GTK_SPIN_BUTTON (cfg));
      vals->n = spin_int (n);
      copy_text (vals->model, sizeof vals->model, model);
      vals->min_size = spin_int (min_size);
      vals->max_size = spin_int (max_size);
      copy_text (vals->url, sizeof vals->url, url);
      g_free (*apikey);
      *apikey = g_strdup (gtk_entry_get_text (GTK_ENTRY (key)));
    }
  gtk_widget_destroy (dialog);
  return ok;
}

/* --- exporting the pixels -------------------------------------------------------------------- */

/* Raw 8-bit pixels of `rect` of a drawable, in `format`, written to `path`. */
static gboolean
write_raw (gint32 drawable, const GeglRectangle *rect, const Babl *format, const gchar *path,
           GError **error)
{
  GeglBuffer *buffer = gimp_drawable_get_buffer (drawable);
  gsize       size = (gsize) rect->width * rect->height * babl_format_get_bytes_per_pixel (format);
  guchar     *data = g_malloc (size);
  gboolean    ok;

  gegl_buffer_get (buffer, rect, 1.0, format, data, GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref (buffer);
  ok = g_file_set_contents (path, (const gchar *) data, (gssize) size, error);
  g_free (data);
  return ok;
}

static void
add_raw (JsonBuilder *builder, const gchar *member, const gchar *path, gint width, gint height)
{
  json_builder_set_member_name (builder, member);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "path");
  json_builder_add_string_value (builder, path);
  json_builder_set_member_name (builder, "width");
  json_builder_add_int_value (builder, width);
  json_builder_set_member_name (builder, "height");
  json_builder_add_int_value (builder, height);
  json_builder_end_object (builder);
}

static void
add_pair (JsonBuilder *builder, const gchar *member, gint a, gint b)
{
  json_builder_set_member_name (builder, member);
  json_builder_begin_array (builder);
  json_builder_add_int_value (builder, a);
  json_builder_add_int_value (builder, b);
  json_builder_end_array (builder);
}

static void
add_string (JsonBuilder *builder, const gchar *member, const gchar *value)
{
  json_builder_set_member_name (builder, member);
  json_builder_add_string_value (builder, value);
}

/* Export the pixels and write the job; FALSE with `error` set when something failed. */
static gboolean
write_job (gint32 image, const HordeValues *vals, const gchar *dir, gchar **job_path,
           GError **error)
{
  gint          width = gimp_image_width (image), height = gimp_image_height (image);
  gboolean      selected = FALSE;
  gint          x1 = 0, y1 = 0, x2 = width, y2 = height;
  GeglRectangle rect, whole = { 0, 0, width, height };
  gint32        visible;
  gchar        *pixels = g_build_filename (dir, "pixels.rgba", NULL);
  gchar        *mask = g_build_filename (dir, "selection.gray", NULL);
  gchar        *out_dir = g_build_filename (dir, "out", NULL);
  JsonBuilder  *builder;
  JsonGenerator *generator;
  JsonNode     *root;
  gchar        *text;
  gboolean      ok;

  gimp_selection_bounds (image, &selected, &x1, &y1, &x2, &y2);
  if (!selected)
    x1 = 0, y1 = 0, x2 = width, y2 = height;
  rect = (GeglRectangle) { x1, y1, x2 - x1, y2 - y1 };

  /* What the artist sees, all layers composed, without touching the image: the whole image,
   * since the horde gets the pixels around the selection too (its context, never stretched). */
  visible = gimp_layer_new_from_visible (image, image, "ai-horde visible");
  ok = write_raw (visible, &whole, babl_format ("R'G'B'A u8"), pixels, error);
  gimp_item_delete (visible);
  if (ok && selected)
    ok = write_raw (gimp_image_get_selection (image), &rect, babl_format ("Y u8"), mask, error);

  if (ok)
    {
      builder = json_builder_new ();
      json_builder_begin_object (builder);
      add_string (builder, "prompt", vals->prompt);
      add_string (builder, "negative", vals->negative);
      add_string (builder, "mode", MODE_NAMES[vals->mode]);
      json_builder_set_member_name (builder, "strength");
      json_builder_add_double_value (builder, vals->strength);
      json_builder_set_member_name (builder, "seed");
      if (vals->seed >= 0)
        {
          gchar *seed = g_strdup_printf ("%d", vals->seed);
          json_builder_add_string_value (builder, seed);
          g_free (seed);
        }
      else
        json_builder_add_string_value (builder, "");
      json_builder_set_member_name (builder, "steps");
      json_builder_add_int_value (builder, vals->steps);
      json_builder_set_member_name (builder, "cfg_scale");
      json_builder_add_double_value (builder, vals->cfg);
      add_string (builder, "model", vals->model);
      json_builder_set_member_name (builder, "n");
      json_builder_add_int_value (builder, vals->n);
      add_string (builder, "url", vals->url);
      json_builder_set_member_name (builder, "min_size");
      json_builder_add_int_value (builder, vals->min_size);
      json_builder_set_member_name (builder, "max_size");
      json_builder_add_int_value (builder, vals->max_size);
      add_pair (builder, "canvas", width, height);
      add_pair (builder, "origin", 0, 0);
      add_raw (builder, "pixels", pixels, width, height);
      if (selected)
        {
          json_builder_set_member_name (builder, "selection");
          json_builder_begin_array (builder);
          json_builder_add_int_value (builder, x1);
          json_builder_add_int_value (builder, y1);
          json_builder_add_int_value (builder, rect.width);
          json_builder_add_int_value (builder, rect.height);
          json_builder_end_array (builder);
          add_raw (builder, "selection_mask", mask, rect.width, rect.height);
        }
      add_string (builder, "out_dir", out_dir);
      json_builder_end_object (builder);

      root = json_builder_get_root (builder);
      generator = json_generator_new ();
      json_generator_set_root (generator, root); /* copies it */
      json_node_unref (root);
      text = json_generator_to_data (generator, NULL);
      *job_path = g_build_filename (dir, "job.json", NULL);
      ok = g_file_set_contents (*job_path, text, -1, error);
      g_free (text);
      g_object_unref (generator);
      g_object_unref (builder);
    }
  g_free (pixels);
  g_free (mask);
  g_free (out_dir);
  return ok;
}

/* --- following the CLI ----------------------------------------------------------------------- */

static void
show_progress (Run *run, gdouble fraction, const gchar *text)
{
  gchar *label = g_strdup_printf ("AI Horde: %s", text);

  gimp_progress_set_text (label);
  gimp_progress_update (CLAMP (fraction, 0.0, 1.0));
  if (run->bar)
    {
      gtk_progress_bar_set_fraction (GTK_PROGRESS_BAR (run->bar), CLAMP (fraction, 0.0, 1.0));
      gtk_progress_bar_set_text (GTK_PROGRESS_BAR (run->bar), label);
    }
  g_free (label);
}

static void
add_layer (Run *run, JsonObject *event)
{
  const gchar *path = json_object_get_string_member (event, "path");
  gint32       layer = gimp_file_load_layer (GIMP_RUN_NONINTERACTIVE, run->image, path);

  if (layer < 0)
    {
      g_free (run->error);
      run->error = g_strdup_printf ("GIMP could not load the result %s", path);
      return;
    }
  gimp_item_set_name (layer, json_object_get_string_member (event, "name"));
  gimp_image_insert_layer (run->image, layer, 0, -1);
  gimp_layer_set_offsets (layer, (gint) json_object_get_int_member (event, "x"),
                          (gint) json_object_get_int_member (event, "y"));
  run->images++;
  gimp_displays_flush ();
}

static void
handle_line (Run *run, const gchar *line)
{
  JsonParser  *parser = json_parser_new ();
  JsonNode    *root;
  JsonObject  *event;
  const gchar *kind;

  if (!json_parser_load_from_data (parser, line, -1, NULL)
      || !(root = json_parser_get_root (parser)) || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_printerr ("%s: not a JSON event from the client: %s", BINARY_NAME, line);
      g_object_unref (parser);
      return;
    }
  event = json_node_get_object (root);
  kind = json_object_get_string_member_with_default (event, "event", "");
  if (g_strcmp0 (kind, "progress") == 0)
    show_progress (run, json_object_get_double_member_with_default (event, "fraction", 0.0),
                   json_object_get_string_member_with_default (event, "text", ""));
  else if (g_strcmp0 (kind, "image") == 0)
    add_layer (run, event);
  else if (g_strcmp0 (kind, "error") == 0)
    {
      g_free (run->error);
      run->error = g_strdup (json_object_get_string_member_with_default (event, "message", "?"));
    }
  else if (g_strcmp0 (kind, "message") == 0)
    g_printerr ("%s: %s\n", BINARY_NAME,
                json_object_get_string_member_with_default (event, "text", ""));
  g_object_unref (parser);
}

static void
maybe_quit (Run *run)
{
  if (run->out_done && run->child_done)
    g_main_loop_quit (run->loop);
}

static gboolean
on_output (GIOChannel *channel, GIOCondition condition, gpointer data)
{
  Run      *run = data;
  gchar    *line = NULL;
  GIOStatus status;

  (void) condition;
  /* Non-blocking: read every complete line there is, then give the loop back. */
  while ((status = g_io_channel_read_line (channel, &line, NULL, NULL, NULL))
         == G_IO_STATUS_NORMAL)
    {
      handle_line (run, line);
      g_free (line);
      line = NULL;
    }
  g_free (line);
  if (status == G_IO_STATUS_AGAIN)
    return G_SOURCE_CONTINUE;
  run->out_done = TRUE;
  maybe_quit (run);
  return G_SOURCE_REMOVE;
}

static void
on_child_exit (GPid pid, gint wait_status, gpointer data)
{
  Run *run = data;

  run->wait_status = wait_status;
  run->child_done = TRUE;
  g_spawn_close_pid (pid);
  maybe_quit (run);
}

static void
cancel_child (Run *run)
{
  if (run->in_fd >= 0)
    {
      close (run->in_fd); /* the CLI withdraws the request and reports "cancelled" */
      run->in_fd = -1;
    }
}

static void
on_cancel_response (GtkDialog *dialog, gint response, gpointer data)
{
  Run *run = data;

  (void) response;
  gtk_dialog_set_response_sensitive (dialog, GTK_RESPONSE_CANCEL, FALSE);
  show_progress (run, 0.0, "cancelling...");
  cancel_child (run);
}

static const gchar *
cli_path (void)
{
  const gchar *configured = g_getenv (CLI_ENV);

  return configured && *configured ? configured : HORDE_CLI;
}

static void
remove_tree (const gchar *path)
{
  GDir        *dir = g_dir_open (path, 0, NULL);
  const gchar *name;

  if (dir)
    {
      while ((name = g_dir_read_name (dir)))
        {
          gchar *child = g_build_filename (path, name, NULL);

          if (g_file_test (child, G_FILE_TEST_IS_DIR))
            remove_tree (child);
          else
            g_unlink (child);
          g_free (child);
        }
      g_dir_close (dir);
    }
  g_rmdir (path);
}

/* Run one job; NULL on success, else the text for the artist (to be freed). */
static gchar *
run_job (gint32 image, const HordeValues *vals, const gchar *apikey, gboolean interactive)
{
  GError    *error = NULL;
  gchar     *dir, *job_path = NULL, *message = NULL;
  gchar    **env;
  gchar     *argv[4];
  GPid       pid;
  gint       out_fd;
  Run        run = { 0 };
  GtkWidget *dialog = NULL;

  if (!*vals->prompt)
    return g_strdup ("the prompt is empty: say what to paint");
  if (vals->mode < MODE_AUTO || vals->mode > MODE_INPAINTING)
    return g_strdup_printf ("mode must be 0..3 (auto, txt2img, img2img, inpainting), got %d",
                            vals->mode);
  dir = g_dir_make_tmp ("ai-horde-XXXXXX", &error);
  if (!dir)
    {
      message = g_strdup_printf ("no temporary folder: %s", error->message);
      g_error_free (error);
      return message;
    }
  gimp_progress_init ("AI Horde: preparing...");
  if (!write_job (image, vals, dir, &job_path, &error))
    {
      message = g_strdup_printf ("could not export the pixels: %s", error->message);
      g_error_free (error);
      goto out;
    }

  argv[0] = (gchar *) cli_path ();
  argv[1] = (gchar *) "gimp-job";
  argv[2] = job_path;
  argv[3] = NULL;
  /* The key goes by environment, never on a command line other users can read with ps. */
  env = g_get_environ ();
  if (apikey && *apikey)
    env = g_environ_setenv (env, "HORDE_APIKEY", apikey, TRUE);
  if (!g_spawn_async_with_pipes (NULL, argv, env,
                                 G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH, NULL, NULL,
                                 &pid, &run.in_fd, &out_fd, NULL, &error))
    {
      message = g_strdup_printf ("could not start the horde client %s (%s): install "
                                 "krita-horde's client with ./run gimp-plugin, or point $%s "
                                 "at `horde`", argv[0], error->message, CLI_ENV);
      g_error_free (error);
      g_strfreev (env);
      goto out;
    }
  g_strfreev (env);

  run.image = image;
  run.loop = g_main_loop_new (NULL, FALSE);
  run.out = g_io_channel_unix_new (out_fd);
  g_io_channel_set_close_on_unref (run.out, TRUE);
  g_io_channel_set_flags (run.out, G_IO_FLAG_NONBLOCK, NULL);
  g_io_add_watch (run.out, G_IO_IN | G_IO_HUP | G_IO_ERR, on_output, &run);
  g_child_watch_add (pid, on_child_exit, &run);

  if (interactive)
    {
      dialog = gimp_dialog_new ("AI Horde", BINARY_NAME, NULL, 0, NULL, NULL,
                                "_Cancel", GTK_RESPONSE_CANCEL, NULL);
      run.bar = gtk_progress_bar_new ();
      gtk_widget_set_size_request (run.bar, 360, -1);
      gtk_container_set_border_width (GTK_CONTAINER (run.bar), 12);
      gtk_box_pack_start (GTK_BOX (gtk_dialog_get_content_area (GTK_DIALOG (dialog))),
                          run.bar, TRUE, TRUE, 0);
      g_signal_connect (dialog, "response", G_CALLBACK (on_cancel_response), &run);
      g_signal_connect (dialog, "delete-event", G_CALLBACK (gtk_true), NULL);
      gtk_widget_show_all (dialog);
    }

  gimp_image_undo_group_start (image);
  show_progress (&run, 0.0, "starting...");
  g_main_loop_run (run.loop);
  gimp_image_undo_group_end (image);
  gimp_progress_end ();
  if (dialog)
    gtk_widget_destroy (dialog);
  cancel_child (&run);
  g_io_channel_unref (run.out);
  g_main_loop_unref (run.loop);

  if (run.error)
    message = g_strdup (run.error);
  else if (!WIFEXITED (run.wait_status) || WEXITSTATUS (run.wait_status) != 0)
    message = g_strdup_printf ("the horde client %s stopped (wait status %d) without saying "
                               "why; see GIMP's terminal", cli_path (), run.wait_status);
  else if (run.images == 0)
    message = g_strdup ("the horde client finished without any image");
  g_free (run.error);

out:
  remove_tree (dir);
  g_free (dir);
  g_free (job_path);
  return message;
}

/* --- the procedure --------------------------------------------------------------------------- */

static void
run (const gchar *name, gint nparams, const GimpParam *param, gint *nreturn_vals,
     GimpParam **return_vals)
{
  static GimpParam  values[2];
  GimpRunMode       run_mode = param[0].data.d_int32;
  gint32            image = param[1].data.d_image;
  HordeValues       vals = DEFAULTS;
  gchar            *apikey = NULL;
  gchar            *message = NULL;
  GimpPDBStatusType status = GIMP_PDB_SUCCESS;

  (void) name;
  *nreturn_vals = 1;
  *return_vals = values;
  values[0].type = GIMP_PDB_STATUS;

  gegl_init (NULL, NULL);
  gimp_get_data (PROC_NAME, &vals);

  switch (run_mode)
    {
    case GIMP_RUN_INTERACTIVE:
      apikey = stored_key ();
      if (!horde_dialog (&vals, &apikey))
        status = GIMP_PDB_CANCEL;
      else
        store_key (apikey);
      break;
    case GIMP_RUN_NONINTERACTIVE:
      if (nparams != N_ARGS)
        {
          status = GIMP_PDB_CALLING_ERROR;
          break;
        }
      g_strlcpy (vals.prompt, param[3].data.d_string ? param[3].data.d_string : "",
                 sizeof vals.prompt);
      g_strlcpy (vals.negative, param[4].data.d_string ? param[4].data.d_string : "",
                 sizeof vals.negative);
      vals.mode = param[5].data.d_int32;
      vals.strength = param[6].data.d_float;
      vals.seed = param[7].data.d_int32;
      vals.steps = param[8].data.d_int32;
      vals.cfg = param[9].data.d_float;
      g_strlcpy (vals.model, param[10].data.d_string ? param[10].data.d_string : "",
                 sizeof vals.model);
      vals.n = param[11].data.d_int32;
      g_strlcpy (vals.url, param[12].data.d_string ? param[12].data.d_string : "",
                 sizeof vals.url);
      if (param[13].data.d_string && *param[13].data.d_string)
        apikey = g_strdup (param[13].data.d_string);
      else
        apikey = stored_key ();
      vals.min_size = param[14].data.d_int32;
      vals.max_size = param[15].data.d_int32;
      break;
    case GIMP_RUN_WITH_LAST_VALS:
      apikey = stored_key ();
      break;
    }

  if (status == GIMP_PDB_SUCCESS)
    {
      message = run_job (image, &vals, apikey, run_mode == GIMP_RUN_INTERACTIVE);
      if (message)
        {
          g_message ("%s", message); /* the title says "AI Horde" already */
          status = GIMP_PDB_EXECUTION_ERROR;
          *nreturn_vals = 2;
          values[1].type = GIMP_PDB_STRING;
          values[1].data.d_string = message; /* freed with the process */
        }
      else if (run_mode != GIMP_RUN_NONINTERACTIVE)
        gimp_set_data (PROC_NAME, &vals, sizeof vals);
      gimp_displays_flush ();
    }
  if (apikey)
    {
      memset (apikey, 0, strlen (apikey));
      g_free (apikey);
    }
  values[0].data.d_status = status;
}
